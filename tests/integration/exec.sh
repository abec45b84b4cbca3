#!/bin/bash
# Integration tests for EXEC: the real sbx-init and the real sbx CLI over a
# Unix socket, with the agent both as an ordinary subreaper and as PID 1 of
# its own user+pid+mount namespaces.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/agent.sh"

no_process() { ! pgrep -f "$1" >/dev/null; }

test_echo() {
	expect_eq output "$("$SBX" exec echo hello world)" "hello world"
}

test_exit_codes() {
	local c
	for c in 0 1 42; do
		"$SBX" exec sh -c "exit $c"
		expect_eq "exit $c" $? $c || return 1
	done
}

test_not_found() {
	local out rc
	out=$("$SBX" exec no-such-program 2>&1)
	rc=$?
	expect_eq "status for a missing program" $rc 127 || return 1
	[[ $out == *"command not found: no-such-program"* ]] || fail "message: $out" || return 1
	out=$("$SBX" exec /no/such/file 2>&1)
	rc=$?
	expect_eq "status for a missing file" $rc 127 || return 1
	[[ $out == *"no such file or directory: /no/such/file"* ]] || fail "message: $out"
}

test_not_executable() {
	local out
	echo 'echo hi' >"$T_TMP/script"
	chmod 644 "$T_TMP/script"
	out=$("$SBX" exec "$T_TMP/script" 2>&1)
	expect_eq status $? 126 && [[ $out == *"permission denied: $T_TMP/script"* ]] ||
		fail "message: $out"
}

test_bad_cwd() {
	local out rc
	out=$("$SBX" exec --cwd /nonexistent pwd 2>&1)
	rc=$?
	expect_eq "status for a bad directory" $rc 126 || return 1
	[[ $out == *"cannot change directory to /nonexistent: No such file or directory"* ]] ||
		fail "message: $out" || return 1
	expect_eq cwd "$("$SBX" exec --cwd /tmp pwd)" /tmp
}

test_signal_death() {
	"$SBX" exec sh -c 'kill -TERM $$'
	expect_eq "SIGTERM" $? 143 || return 1
	"$SBX" exec sh -c 'kill -KILL $$'
	expect_eq "SIGKILL" $? 137
}

test_stdin_64m() {
	head -c 64M /dev/urandom >"$T_TMP/in"
	local want got
	want=$(sha256sum <"$T_TMP/in" | cut -d' ' -f1)
	got=$("$SBX" exec -i cat <"$T_TMP/in" | sha256sum | cut -d' ' -f1)
	expect_eq sha256 "$got" "$want"
}

# STDIN payloads are spliced from the socket into the command's pipe: a
# command that closes its input half-way through a frame drops the rest
# (EPIPE) and still gets its later frames' EOF and its status.
test_stdin_closed_early() {
	local out rc
	out=$(head -c 32M /dev/zero | timeout 30 "$SBX" exec -i sh -c \
		'head -c 100000 | wc -c; exec 0<&-; sleep 0.3; echo done')
	rc=$?
	expect_eq "status" $rc 0 || return 1
	expect_eq "output" "$(echo $out)" "100000 done"
}

# A reader that does not read for a while paces the sender: the agent holds
# the pipe's worth, not the stream (its RSS), and loses nothing.
test_stdin_slow_reader() {
	local srv rss0 rss1 want got
	head -c 48M /dev/urandom >"$T_TMP/slow"
	want=$(sha256sum <"$T_TMP/slow" | cut -d' ' -f1)
	srv=$(server_pid)
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$srv/status")
	"$SBX" exec -i sh -c 'sleep 2; cat' <"$T_TMP/slow" | sha256sum | cut -d' ' -f1 >"$T_TMP/slow.sum" &
	sleep 1.5
	rss1=$(awk '/^VmRSS/ { print $2 }' "/proc/$srv/status")
	wait $!
	got=$(cat "$T_TMP/slow.sum")
	expect_eq sha256 "$got" "$want" || return 1
	[ $((rss1 - rss0)) -lt 8192 ] || fail "the server grew by $((rss1 - rss0)) KiB while the reader slept"
}

test_stdin_null() {
	local out rc
	# A cat that waits for input is killed by the timeout (124): a failure.
	out=$(timeout 10 "$SBX" exec cat)
	rc=$?
	expect_eq "status of cat without -i" $rc 0 || return 1
	expect_eq "cat without -i" "$out" ""
}

test_stdout_stderr_apart() {
	"$SBX" exec sh -c 'echo out; echo err >&2; echo out2; echo err2 >&2' \
		>"$T_TMP/o" 2>"$T_TMP/e"
	expect_eq stdout "$(cat "$T_TMP/o")" $'out\nout2' &&
		expect_eq stderr "$(cat "$T_TMP/e")" $'err\nerr2'
}

test_env() {
	expect_eq "--env" "$("$SBX" exec --env FOO='a b' sh -c 'echo "$FOO"')" "a b" || return 1
	expect_eq "--clear-env" "$("$SBX" exec --clear-env --env X=1 /usr/bin/env)" "X=1" || return 1
	expect_eq "default PATH" "$("$SBX" exec --clear-env --env A=1 sh -c 'echo $A')" "1"
}

test_concurrent_100() {
	local i pids=()
	for i in $(seq 1 100); do
		"$SBX" exec sh -c "echo out-$i; echo err-$i >&2; exit $((i % 7))" \
			>"$T_TMP/c.$i" 2>"$T_TMP/ce.$i" &
		pids[i]=$!
	done
	for i in $(seq 1 100); do
		wait ${pids[i]}
		expect_eq "exec $i status" $? $((i % 7)) || return 1
		expect_eq "exec $i stdout" "$(cat "$T_TMP/c.$i")" "out-$i" || return 1
		expect_eq "exec $i stderr" "$(cat "$T_TMP/ce.$i")" "err-$i" || return 1
	done
}

# `script` gives sbx a terminal of a chosen size.
in_terminal() { script -qec "$1" /dev/null | tr -d '\r'; }

test_pty() {
	local out
	out=$(in_terminal "$SBX exec -t tty")
	[[ $out =~ ^/dev/pts/[0-9]+$ ]] || fail "tty printed '$out'" || return 1
	out=$(in_terminal "stty rows 40 cols 100; $SBX exec -t stty size")
	expect_eq "stty size" "$out" "40 100"
}

test_pty_resize() {
	local out
	out=$(in_terminal "stty rows 40 cols 100; (sleep 1; stty -F /dev/tty rows 50 cols 120) &
		$SBX exec -t sh -c 'trap \"stty size; exit 0\" WINCH; stty size;
			i=0; while [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done; exit 1'")
	expect_eq "sizes seen" "$out" $'40 100\n50 120'
}

test_sigint_forwarded() {
	"$SBX" exec sh -c 'trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 0.05; done' \
		>"$T_TMP/int" &
	local pid=$!
	wait_for 10 grep -qs ready "$T_TMP/int" || fail "command did not start" || return 1
	kill -INT $pid
	# A lost SIGINT must fail the test, not hang the suite.
	wait_for 10 eval '! kill -0 $pid 2>/dev/null' ||
		{ kill -KILL $pid; wait $pid; fail "sbx exec still runs 10 s after SIGINT"; return 1; }
	wait $pid
	expect_eq status $? 7 && expect_eq output "$(cat "$T_TMP/int")" $'ready\ngot-int'
}

# A starved agent (its server stopped) never starts the command: SIGTERM
# (timeout(1)) still ends sbx exec at once, 128+15, saying why; it waited
# for the command to start before. With --direct-stdout, it waits first
# for the answer to OUTPUT on its second connection.
test_sigterm_before_start() { # [OPTION of sbx exec]
	local srv pid gone
	srv=$(server_pid)
	[ -n "$srv" ] || fail "no server process" || return 1
	kill -STOP "$srv"
	"$SBX" exec $1 true 2>"$T_TMP/st.err" &
	pid=$!
	sleep 0.5
	kill -TERM $pid
	wait_for 3 is_gone $pid
	gone=$?
	kill -CONT "$srv"
	[ $gone = 0 ] || { kill -KILL $pid; fail "sbx exec still waits 3 s after SIGTERM"; return 1; }
	wait $pid
	expect_eq status $? 143 || return 1
	grep -q "before the command started" "$T_TMP/st.err" || fail "sbx said: $(cat "$T_TMP/st.err")"
}

# Started with SIGINT ignored (a background job of a script): sbx still
# forwards it. (The kernel never discards a blocked signal, ignored or
# not, so the signalfd sees it; this guards that sbx keeps reading its
# signals that way rather than through handlers.)
test_sigint_inherited_ignored() {
	(trap '' INT; exec "$SBX" exec sh -c 'trap "echo got-int; exit 7" INT; echo ready
		while :; do sleep 0.05; done') >"$T_TMP/ign" &
	local pid=$! rc
	wait_for 10 grep -qs ready "$T_TMP/ign" || fail "command did not start" || return 1
	kill -INT $pid
	wait_for 3 is_gone $pid || { kill -TERM $pid; fail "SIGINT was ignored"; return 1; }
	wait $pid
	rc=$?
	expect_eq status $rc 7 && expect_eq output "$(cat "$T_TMP/ign")" $'ready\ngot-int'
}

test_client_killed() {
	local tag=7$RANDOM pid
	"$SBX" exec sh -c "sleep $tag.1 & sleep $tag.2; :" &
	pid=$!
	wait_for 10 pgrep -f "^sleep $tag.2" >/dev/null || fail "command did not start" || return 1
	kill -KILL $pid
	wait $pid 2>/dev/null
	wait_for 10 no_process "sleep $tag" ||
		fail "processes left: $(pgrep -af "sleep $tag")" || return 1
	wait_for 5 test -z "$(zombies_under $INIT_PID)" || fail "zombies: $(zombies_under $INIT_PID)"
}

# --direct-stdout: the command writes into a connection of its own; every
# byte arrives, in order, and the status and stderr still come.
test_direct_stdout() {
	local want got rc
	head -c 64M /dev/urandom >"$T_TMP/direct"
	want=$(sha256sum <"$T_TMP/direct" | cut -d' ' -f1)
	"$SBX" exec --direct-stdout sh -c "cat '$T_TMP/direct'; echo to-stderr >&2; exit 9" \
		>"$T_TMP/direct.out" 2>"$T_TMP/direct.err"
	rc=$?
	got=$(sha256sum <"$T_TMP/direct.out" | cut -d' ' -f1)
	rm -f "$T_TMP/direct" "$T_TMP/direct.out"
	expect_eq "status" "$rc" 9 || return 1
	expect_eq sha256 "$got" "$want" || return 1
	expect_eq stderr "$(cat "$T_TMP/direct.err")" to-stderr
}

# The stream ends with the command, as a pipe's is not waited for past
# the exit: a background process holding it does not hold sbx.
test_direct_stdout_background() {
	local out start=$SECONDS
	out=$(timeout 20 "$SBX" exec --direct-stdout sh -c 'sleep 30 & echo done')
	expect_eq "status" $? 0 || return 1
	expect_eq output "$out" done || return 1
	[ $((SECONDS - start)) -lt 10 ] || fail "sbx waited $((SECONDS - start)) s for the background process"
}

test_direct_stdout_client_killed() {
	local tag=8$RANDOM pid
	"$SBX" exec --direct-stdout sh -c "while :; do echo $tag; done" >"$T_TMP/killed.out" &
	pid=$!
	# (its output arriving, not pgrep: the client's command line matches too)
	wait_for 10 test -s "$T_TMP/killed.out" || fail "no output arrived" || return 1
	kill -KILL $pid
	wait $pid 2>/dev/null
	wait_for 10 no_process "echo $tag" ||
		fail "processes left: $(pgrep -af "echo $tag")" || return 1
	expect_eq "exec afterwards" "$("$SBX" exec --direct-stdout echo served)" served
}

test_direct_stdout_refused() {
	"$SBX" exec --direct-stdout -t true 2>/dev/null
	expect_eq "with -t" $? 2 || return 1
	"$SBX" exec --direct-stdout --detach true 2>/dev/null
	expect_eq "with --detach" $? 2
}

test_server_restart() {
	local old new
	old=$(server_pid)
	[ -n "$old" ] || fail "no server process" || return 1
	kill -KILL "$old"
	expect_eq "exec after kill -9" "$("$SBX" exec echo back)" back || return 1
	new=$(server_pid)
	[ -n "$new" ] && [ "$new" != "$old" ] || fail "server not restarted ($old -> $new)" || return 1
	grep -q "the server was killed by signal 9" "$AGENT_LOG" || fail "no log line on restart" ||
		return 1
	expect_eq zombies "$(zombies_under $INIT_PID)" ""
}

test_agent_stop() {
	local tag=8$RANDOM cpid rc
	"$SBX" exec sh -c "trap '' TERM; sleep $tag" 2>"$T_TMP/stop.err" &
	cpid=$!
	wait_for 10 pgrep -f "^sleep $tag" >/dev/null || fail "command did not start" || return 1
	kill -TERM $INIT_PID
	wait_for 15 is_gone $INIT_PID || fail "agent did not stop" || return 1
	wait $cpid
	rc=$?
	pgrep -f "sleep $tag" >/dev/null && { fail "workload survived the agent"; return 1; }
	[ ! -e "$AGENT_SOCK" ] || fail "socket left behind" || return 1
	expect_eq "client status" $rc 125 && grep -q "shutting down" "$T_TMP/stop.err" ||
		fail "client said: $(cat "$T_TMP/stop.err")"
}

test_config() {
	cat >"$T_TMP/config" <<'CONF'
# a sandbox configuration
env.GREETING = "hello\tworld"
env.PLAIN = one two
workdir = /tmp
bogus_key = 1
CONF
	start_agent "$1" --config "$T_TMP/config" || return 1
	expect_eq "config env and workdir" \
		"$("$SBX" exec sh -c 'printf "%s|%s|%s\n" "$GREETING" "$PLAIN" "$PWD"')" \
		$'hello\tworld|one two|/tmp' || return 1
	grep -q "unknown key 'bogus_key'" "$AGENT_LOG" || fail "no error for bogus_key: $(cat "$AGENT_LOG")"
}

# A descriptor the agent was started with and never marked (as PID 1's
# child once left the configuration, with the token, on fd 5): no command
# gets it, nor the terminal's slave beyond its 0-2. ls lists its own fd 3.
test_fds_closed() {
	local out
	echo secret >"$T_TMP/held"
	exec 9<"$T_TMP/held"
	start_agent "$1"
	exec 9<&-
	[ -S "$AGENT_SOCK" ] || fail "the agent did not start" || return 1
	out=$("$SBX" exec sh -c 'echo $(ls /proc/self/fd)')
	expect_eq "a command's fds" "$out" "0 1 2 3" || return 1
	out=$(in_terminal "$SBX exec -t sh -c 'echo \$(ls /proc/self/fd)'")
	expect_eq "a terminal command's fds" "$out" "0 1 2 3"
}

for mode in dev pid1; do
	SUITE="exec[$mode]"
	start_agent $mode || { echo "not ok - $SUITE: agent starts"; continue; }
	t "echo" test_echo
	t "exit codes 0, 1, 42" test_exit_codes
	t "127 for a missing program, with a message" test_not_found
	t "126 for a file that cannot be executed" test_not_executable
	t "a bad working directory" test_bad_cwd
	t "death by signal is 128+N" test_signal_death
	t "64 MiB through stdin and back" test_stdin_64m
	t "stdin is /dev/null without -i" test_stdin_null
	t "stdin closed by the command mid-stream: the rest dropped, status kept" test_stdin_closed_early
	t "stdin to a slow reader: paced, bounded, nothing lost" test_stdin_slow_reader
	t "stdout and stderr kept apart" test_stdout_stderr_apart
	t "environment: --env, --clear-env" test_env
	t "100 concurrent execs" test_concurrent_100
	t "PTY: a /dev/pts terminal of the requested size" test_pty
	t "PTY: a resize reaches the command" test_pty_resize
	t "SIGINT is forwarded to the command" test_sigint_forwarded
	t "SIGTERM before the command started ends sbx exec at once" test_sigterm_before_start
	t "--direct-stdout: SIGTERM before OUTPUT was answered ends sbx exec at once" \
		test_sigterm_before_start --direct-stdout
	t "SIGINT inherited ignored is still forwarded" test_sigint_inherited_ignored
	t "a killed client leaves no process and no zombie" test_client_killed
	t "--direct-stdout: 64 MiB exact, status and stderr arrive" test_direct_stdout
	t "--direct-stdout: the stream ends at the exit, not with a background process" \
		test_direct_stdout_background
	t "--direct-stdout: a client killed mid-stream leaves no process, the agent serves" \
		test_direct_stdout_client_killed
	t "--direct-stdout is refused with -t and --detach" test_direct_stdout_refused
	t "kill -9 of the server: restarted, next exec works" test_server_restart
	t "stopping the agent stops its commands" test_agent_stop
	t "configuration file: env, workdir, a bad key" test_config $mode
	t "a command holds fds 0-2 only, whatever the agent was started with" test_fds_closed $mode
done
