#!/bin/bash
# Integration tests for detached commands, reattaching, the status table,
# the environment store, and what survives a restart of the agent's server
# (development mode: the real agent and CLI over a Unix socket).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/agent.sh"

# Deterministic output larger than the 1 MiB per-stream buffer.
BIG_LINES=700000
expected_big() { seq 1 $BIG_LINES; }

test_detach_ps_attach() {
	local pid out
	pid=$("$SBX" exec --detach -- sh -c 'echo one; sleep 0.5; echo two >&2; exit 5') || return 1
	[[ $pid =~ ^[0-9]+$ ]] || fail "--detach printed '$pid'" || return 1
	"$SBX" ps | grep -q "^$pid .*running" || fail "ps: $("$SBX" ps)" || return 1
	out=$("$SBX" attach "$pid" 2>"$T_TMP/att.err")
	expect_eq "attach status" $? 5 || return 1
	expect_eq stdout "$out" one && expect_eq stderr "$(cat "$T_TMP/att.err")" two || return 1
	# Collected: the agent forgets it.
	"$SBX" ps | grep -q "^$pid " && { fail "still listed after its status was collected"; return 1; }
	return 0
}

test_status_kept() {
	local pid out rc
	pid=$("$SBX" exec --detach -- sh -c 'echo early; exit 9') || return 1
	wait_for 10 eval '"$SBX" ps | grep -q "^$pid .*exited *9 "' ||
		fail "ps did not show the exit: $("$SBX" ps)" || return 1
	sleep 1
	out=$("$SBX" attach "$pid")
	rc=$?
	expect_eq "output long after the end" "$out" early || return 1
	expect_eq "status long after the end" $rc 9 || return 1
	"$SBX" attach "$pid" >/dev/null 2>"$T_TMP/gone.err"
	expect_eq "attach after collection" $? 125 && grep -q "no command with pid $pid" "$T_TMP/gone.err"
}

test_output_waits_for_a_reader() {
	local pid
	pid=$("$SBX" exec --detach -- sh -c "seq 1 $BIG_LINES; exit 3")
	# Nobody reads: the command fills the buffer and waits.
	sleep 2
	"$SBX" ps | grep -q "^$pid .*running" || fail "it did not wait: $("$SBX" ps)" || return 1
	"$SBX" attach "$pid" >"$T_TMP/big"
	expect_eq status $? 3 || return 1
	cmp -s "$T_TMP/big" <(expected_big) || fail "output differs ($(wc -c <"$T_TMP/big") bytes)"
}

file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

test_resume_after_a_lost_client() {
	local pid cpid n1 n2 total last=-1
	{ seq 1 200000; seq 200001 $BIG_LINES; } >"$T_TMP/want"
	total=$(wc -c <"$T_TMP/want")
	pid=$("$SBX" exec --detach -- sh -c "seq 1 200000; sleep 3; seq 200001 $BIG_LINES")
	# The first client receives the first part, then is killed in the pause.
	"$SBX" attach "$pid" >"$T_TMP/part1" &
	cpid=$!
	while [ "$(file_size "$T_TMP/part1")" != "$last" ]; do
		last=$(file_size "$T_TMP/part1")
		sleep 0.5
	done
	kill -KILL $cpid
	wait $cpid 2>/dev/null
	"$SBX" attach "$pid" >"$T_TMP/part2" || return 1
	n1=$(wc -c <"$T_TMP/part1")
	n2=$(wc -c <"$T_TMP/part2")
	# The second client starts at the first byte the first one had not
	# received: nothing missing, nothing twice, in order.
	expect_eq "bytes received in all" $((n1 + n2)) "$total" || return 1
	cat "$T_TMP/part1" "$T_TMP/part2" | cmp -s - "$T_TMP/want" || fail "the output differs"
}

test_env_store() {
	"$SBX" env set GREETING='hello world' TEMP=1 || return 1
	expect_eq "get" "$("$SBX" env get GREETING)" "hello world" || return 1
	"$SBX" env unset TEMP || return 1
	"$SBX" env get TEMP && { fail "TEMP still set"; return 1; }
	expect_eq "seen by commands" "$("$SBX" exec sh -c 'echo "$GREETING|${TEMP-unset}"')" \
		"hello world|unset" || return 1
	"$SBX" env set 1BAD=x 2>"$T_TMP/env.err"
	expect_eq "bad name" $? 125 && grep -q "is not NAME=value" "$T_TMP/env.err"
}

test_server_restart() {
	local pid old new tag=9$RANDOM
	pid=$("$SBX" exec --detach -- sh -c 'echo before; read x </dev/null; sleep 2; echo after; exit 4')
	"$SBX" exec sh -c "sleep $tag" &
	local attached=$!
	wait_for 5 pgrep -f "^sleep $tag" >/dev/null || fail "command did not start" || return 1
	sleep 0.3
	old=$(server_pid)
	kill -KILL "$old"
	wait_for 5 eval '[ -n "$(server_pid)" ] && [ "$(server_pid)" != "$old" ]' ||
		fail "server not restarted" || return 1
	wait $attached
	expect_eq "client of a running command" $? 125 || return 1
	# Nothing was killed: both commands are still there...
	"$SBX" ps >"$T_TMP/ps"
	grep -q "^$pid .*running" "$T_TMP/ps" || fail "detached command lost: $(cat "$T_TMP/ps")" ||
		return 1
	grep -q "running .*sleep $tag" "$T_TMP/ps" || fail "attached command lost: $(cat "$T_TMP/ps")" ||
		return 1
	# ...its status reaches the new server, the environment store survived.
	expect_eq "status across the restart" "$("$SBX" attach "$pid"; echo "rc=$?")" \
		$'before\nafter\nrc=4' || return 1
	expect_eq "env across the restart" "$("$SBX" env get GREETING)" "hello world" || return 1
	pkill -f "sleep $tag"
	expect_eq zombies "$(zombies_under $INIT_PID)" ""
}

# A command line chosen by the guest's side (issue 18, item 4): on a
# terminal, `sbx ps` shows its control characters as \xHH (no retitling
# or clearing of the user's terminal); into a pipe the bytes pass as is.
test_ps_escapes_on_a_terminal() {
	local esc=$'\e]0;pwned\a\e[2J' pid out
	pid=$("$SBX" exec --detach -- sh -c 'sleep 30' "$esc") || return 1
	out=$(SBX_CONNECT=$SBX_CONNECT script -qec "$SBX ps" /dev/null)
	[[ $out != *$'\e'* && $out != *$'\a'* ]] || fail "raw control characters reached the terminal" ||
		return 1
	[[ $out == *'\x1b]0;pwned\x07\x1b[2J'* ]] || fail "ps on a terminal said: $out" || return 1
	[[ $("$SBX" ps) == *"$esc"* ]] || fail "into a pipe the bytes changed" || return 1
	"$SBX" exec -- kill "$pid"
	"$SBX" attach "$pid" >/dev/null 2>&1
	return 0
}

# Leaving `sbx attach` does not end the command (issue 18, item 13): Ctrl-C
# detaches (exit 0, the command runs on); --sig-proxy forwards it instead.
test_attach_ctrl_c_detaches() {
	local pid att rc
	pid=$("$SBX" exec --detach -- sh -c 'trap "echo got-int; exit 3" INT; while :; do sleep 0.1; done') ||
		return 1
	"$SBX" attach "$pid" >"$T_TMP/cc.out" 2>"$T_TMP/cc.err" &
	att=$!
	sleep 1
	kill -INT $att
	wait $att
	rc=$?
	expect_eq "attach's status after Ctrl-C" $rc 0 || return 1
	grep -q "detached from $pid" "$T_TMP/cc.err" || fail "attach said: $(cat "$T_TMP/cc.err")" ||
		return 1
	sleep 0.5
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	# With --sig-proxy the interrupt reaches it.
	"$SBX" attach --sig-proxy "$pid" >"$T_TMP/cc2.out" 2>/dev/null &
	att=$!
	sleep 1
	kill -INT $att
	wait $att
	rc=$?
	expect_eq "attach --sig-proxy: the command's status" $rc 3 || return 1
	grep -q got-int "$T_TMP/cc2.out" || fail "the command did not see SIGINT"
}

# Ctrl-P Ctrl-Q on the forwarded stdin detaches; the bytes before reach
# the command, the keys and what follows do not, and no end of input (a
# command detached with -i keeps its stdin open for the next attach -i).
test_attach_detach_keys() {
	local pid out
	pid=$("$SBX" exec --detach -i -- sh -c 'while read -r l; do echo "line:$l"; done; echo eof') ||
		return 1
	# (a pause first: bytes the agent has not read when the client goes
	# may be lost with the connection)
	{ printf 'one\n'; sleep 0.5; printf '\020\021two\n'; } |
		"$SBX" attach -i "$pid" >"$T_TMP/dk.out" 2>"$T_TMP/dk.err"
	expect_eq "attach's status after Ctrl-P Ctrl-Q" $? 0 || return 1
	grep -q "detached from $pid" "$T_TMP/dk.err" || fail "attach said: $(cat "$T_TMP/dk.err")" ||
		return 1
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	# The keys split over two reads, then the end of input.
	{ printf 'three\n\020'; sleep 0.5; printf '\021'; } | "$SBX" attach -i "$pid" >>"$T_TMP/dk.out" \
		2>/dev/null || return 1
	sleep 0.5
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	printf 'four\n' | "$SBX" attach -i "$pid" >>"$T_TMP/dk.out" 2>/dev/null
	expect_eq "what the command read" "$(cat "$T_TMP/dk.out")" $'line:one\nline:three\nline:four\neof'
}

# On a terminal (issue 18, item 13): attach reads it key by key, so that
# Ctrl-P Ctrl-Q typed in the middle of a line detaches (in line mode the
# keys waited for Enter, and the terminal took Ctrl-Q as flow control);
# what was typed before the keys reaches the command, what follows does
# not; the terminal's settings come back however attach ends.
PTY="python3 $ROOT/tests/integration/attach_pty.py"

test_attach_tty_keys_mid_line() {
	local pid res out
	pid=$("$SBX" exec --detach -i -- sh -c 'while read -r l; do echo "line:$l"; done; echo eof') ||
		return 1
	res=$($PTY "$T_TMP/tk.out" 'type:ab\x10\x11cd' -- "$SBX" attach -i "$pid")
	expect_eq "attach -i on a terminal, keys mid-line" "$res" "rc=0 restored=yes" || return 1
	grep -q "detached from $pid" "$T_TMP/tk.out" || fail "attach said: $(cat "$T_TMP/tk.out")" ||
		return 1
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	# Without -i the keys are read all the same (nothing else is sent).
	res=$($PTY "$T_TMP/tk2.out" 'type:zz\x10\x11' -- "$SBX" attach "$pid")
	expect_eq "attach on a terminal, no -i" "$res" "rc=0 restored=yes" || return 1
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	# Ctrl-D ends the input, as in line mode: the command reads the end.
	res=$($PTY "$T_TMP/tk3.out" 'type:x\n\x04' -- "$SBX" attach -i "$pid")
	expect_eq "Ctrl-D, then the command's status" "$res" "rc=0 restored=yes" || return 1
	out=$(tr -d '\r' <"$T_TMP/tk3.out")
	[[ $out == *"line:abx"$'\n'"eof"* && $out != *detached* ]] ||
		fail "what the command read: $out" || return 1
}

# Signals on a terminal: SIGTERM and a typed Ctrl-C detach and give the
# terminal back; with --sig-proxy the typed Ctrl-C reaches the command.
test_attach_tty_signals() {
	local pid res
	pid=$("$SBX" exec --detach -- sh -c 'trap "echo got-int; exit 3" INT; while :; do sleep 0.1; done') ||
		return 1
	res=$($PTY "$T_TMP/ts1.out" signal:TERM -- "$SBX" attach "$pid")
	expect_eq "SIGTERM" "$res" "rc=0 restored=yes" || return 1
	res=$($PTY "$T_TMP/ts2.out" 'type:\x03' -- "$SBX" attach "$pid")
	expect_eq "Ctrl-C typed" "$res" "rc=0 restored=yes" || return 1
	grep -q "detached from $pid" "$T_TMP/ts2.out" || fail "attach said: $(cat "$T_TMP/ts2.out")" ||
		return 1
	"$SBX" ps | grep -q "^$pid .*running" || fail "the command ended: $("$SBX" ps)" || return 1
	res=$($PTY "$T_TMP/ts3.out" 'type:\x03' -- "$SBX" attach --sig-proxy "$pid")
	expect_eq "Ctrl-C typed, --sig-proxy" "$res" "rc=3 restored=yes" || return 1
	grep -q got-int "$T_TMP/ts3.out" || fail "the command did not see SIGINT: $(cat "$T_TMP/ts3.out")"
}

for mode in dev pid1; do
	SUITE="jobs[$mode]"
	start_agent $mode || { echo "not ok - $SUITE: agent starts"; continue; }
	t "exec --detach, ps, attach with output and status" test_detach_ps_attach
	t "the status of an ended command waits for a client" test_status_kept
	t "output beyond the buffer waits for a reader, then all arrives" test_output_waits_for_a_reader
	t "a lost client: the next attach resumes where it stopped" test_resume_after_a_lost_client
	t "the environment store: set, get, unset" test_env_store
	t "kill -9 of the server: commands, statuses and env survive" test_server_restart
	t "ps escapes the guest's control characters on a terminal" test_ps_escapes_on_a_terminal
	t "Ctrl-C on attach detaches; --sig-proxy forwards it" test_attach_ctrl_c_detaches
	t "Ctrl-P Ctrl-Q on attach -i detaches, the command reads on" test_attach_detach_keys
	t "on a terminal: Ctrl-P Ctrl-Q mid-line detaches, also without -i" test_attach_tty_keys_mid_line
	t "on a terminal: SIGTERM, Ctrl-C detach (--sig-proxy forwards); settings restored" test_attach_tty_signals
	stop_agent $INIT_PID $AGENT_JOB
done
