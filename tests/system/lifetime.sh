#!/bin/bash
# System tests for lifetimes, sessions and reattaching, with real sandboxes
# under QEMU: a duration lifetime powers the VM off on time (QEMU exits 0),
# extend moves it, a session sandbox outlives its client by the grace
# period only, kill ends a running command, a detached command's output
# waits for a reader, env and labels reach commands and the guest.
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
GRACE=5   # --session-grace for the session sandboxes
STOP=3    # the agent's default stop grace

exit_file() { echo "$SBX_STATE_DIR/$1/qemu.exit"; }
# Seconds since $1 (a `date +%s.%N` reading).
since() { echo "$(date +%s.%N) - $1" | bc; }

# Waits for a sandbox's QEMU to exit; prints the seconds since $2.
wait_poweroff() { # ID START TIMEOUT
	wait_for "$3" test -s "$(exit_file "$1")" || return 1
	since "$2"
}

test_duration() {
	# The lifetime counts from PID 1's start, which lies between the start
	# of `sbx create` and its return: the power-off comes at least 20 s
	# after the first, and at most 20 s + the stop grace after the second.
	local t0 t el el0
	t0=$(date +%s.%N)
	"$SBX" create --name life20 --lifetime 20s --memory 768 >/dev/null || return 1
	t=$(date +%s.%N)
	el=$(wait_poweroff life20 "$t" 40) || fail "still running after 40 s" || return 1
	el0=$(since "$t0")
	expect_eq "QEMU exit status" "$(cat "$(exit_file life20)")" 0 || return 1
	echo "#   powered off $el s after ready, $el0 s after create began" >&2
	[ "$(echo "$el0 >= 20 && $el <= 20 + $STOP + 2" | bc)" = 1 ] ||
		fail "powered off $el0 s after create began, $el s after ready:" \
			"not within 20-$((20 + STOP + 2)) s"
}

test_extend() {
	local left
	"$SBX" create --name ext --lifetime 20s --memory 768 --label team=core \
		--label 'note=a b' >/dev/null || return 1
	local t=$(date +%s.%N)
	"$SBX" extend ext 30s | grep -q "powers off in 0m4[0-9]s" || fail "extend said otherwise" ||
		return 1
	# Past the first deadline it is still there; info agrees.
	sleep 23
	[ -e "$(exit_file ext)" ] && { fail "it powered off at the first deadline"; return 1; }
	left=$("$SBX" info --json ext | sed 's/.*"lifetime_left_ns":\([0-9]*\).*/\1/')
	left=$((left / 1000000000))
	[ "$left" -ge 20 ] && [ "$left" -le 30 ] || fail "info says $left s left"
}

test_labels() {
	"$SBX" ls | grep -q "^ext .*team=core,note=a b" || fail "ls: $("$SBX" ls)" || return 1
	"$SBX" ls --label team=core | grep -q "^ext " || fail "ls --label team=core" || return 1
	"$SBX" ls --label team=other | grep -q "^ext " && { fail "ls --label team=other"; return 1; }
	"$SBX" info ext | grep -q "labels:     team=core note=a b" || fail "info: $("$SBX" info ext)" ||
		return 1
	expect_eq "labels in the guest" "$("$SBX" exec ext -- cat /run/sbx/labels)" \
		$'team=core\nnote=a b'
}

test_env() {
	"$SBX" env ext set MODE=fast EXTRA=1 && "$SBX" env ext unset EXTRA || return 1
	expect_eq "env in later commands" "$("$SBX" exec ext -- sh -c 'echo "$MODE|${EXTRA-unset}"')" \
		"fast|unset"
}

test_detached_5m() {
	local pid
	seq 1 1000000 | head -c 5242880 >"$T_TMP/want"
	pid=$("$SBX" exec --detach ext -- sh -c 'seq 1 1000000 | head -c 5242880; exit 6') || return 1
	sleep 3 # nobody reads: it waits on its full buffer
	"$SBX" ps ext | grep -q "^$pid .*running" || fail "ps: $("$SBX" ps ext)" || return 1
	"$SBX" attach ext "$pid" >"$T_TMP/got"
	expect_eq status $? 6 || return 1
	cmp -s "$T_TMP/got" "$T_TMP/want" || fail "output differs ($(wc -c <"$T_TMP/got") bytes)"
}

# A session sandbox held by a `sbx create` in the background (in its own
# process, --foreground, so that killing it kills the holder).
session_create() { # NAME
	"$SBX" create --foreground --name "$1" --memory 768 --session-grace ${GRACE}s \
		>"$T_TMP/$1.id" \
		2>"$T_TMP/$1.err" &
	HOLDER=$!
	wait_for 60 test -s "$T_TMP/$1.id" || fail "create $1: $(cat "$T_TMP/$1.err")"
}

test_session_ends() {
	local t el
	session_create sess1 || return 1
	sleep 1
	kill -KILL $HOLDER
	t=$(date +%s.%N)
	el=$(wait_poweroff sess1 "$t" 30) || fail "still running 30 s after its client died" ||
		return 1
	expect_eq "QEMU exit status" "$(cat "$(exit_file sess1)")" 0 || return 1
	echo "#   powered off $el s after its client was killed" >&2
	[ "$(echo "$el >= $GRACE - 1 && $el <= $GRACE + $STOP + 2" | bc)" = 1 ] ||
		fail "powered off after $el s, not after the ${GRACE}s grace period"
}

test_session_reconnect() {
	session_create sess2 || return 1
	kill -KILL $HOLDER
	sleep 1
	"$SBX" connect sess2 2>/dev/null &
	local conn=$!
	sleep $((GRACE + STOP + 3))
	[ -e "$(exit_file sess2)" ] && { fail "powered off although a session came back"; return 1; }
	"$SBX" info sess2 | grep -q "lifetime:   session; 1 open" || fail "info: $("$SBX" info sess2)" ||
		return 1
	"$SBX" close sess2 2>/dev/null
	wait $conn
}

# ID=$(sbx create) returns once the session is held, by a process in the
# background, as docker run -d does (issue 18, item 10): the sandbox lives
# on until sbx close ends its session, then powers off after the grace.
test_create_in_script() {
	local id t el
	id=$(timeout 90 "$SBX" create --name sess3 --memory 768 --session-grace ${GRACE}s \
		2>"$T_TMP/sess3.err")
	expect_eq "create's status" $? 0 || { cat "$T_TMP/sess3.err" >&2; return 1; }
	expect_eq "the id" "$id" sess3 || return 1
	grep -q "held by process [0-9]* in the background" "$T_TMP/sess3.err" ||
		fail "create said: $(cat "$T_TMP/sess3.err")" || return 1
	sleep $((GRACE + STOP + 1))
	[ -e "$(exit_file sess3)" ] && { fail "powered off while its session was held"; return 1; }
	"$SBX" info sess3 | grep -q "lifetime:   session; 1 open" || fail "info: $("$SBX" info sess3)" ||
		return 1
	"$SBX" close sess3 2>/dev/null || return 1
	t=$(date +%s.%N)
	el=$(wait_poweroff sess3 "$t" 30) || fail "still running 30 s after sbx close" || return 1
	echo "#   powered off $el s after sbx close" >&2
}

test_kill_mid_command() {
	local rc
	"$SBX" exec sess2 -- sleep 100 2>"$T_TMP/killed.err" &
	local cpid=$!
	sleep 1
	"$SBX" kill sess2 || return 1
	wait $cpid
	rc=$?
	expect_eq "client status" $rc 125 || return 1
	grep -q "shutting down: killed" "$T_TMP/killed.err" || fail "client said: $(cat "$T_TMP/killed.err")" ||
		return 1
	expect_eq "left behind" "$(pgrep -af "$SBX_STATE_DIR/sess2" ; ls "$SBX_STATE_DIR" | grep sess2)" ""
}

# The two duration sandboxes run side by side; so do the session ones.
test_duration >"$T_TMP/duration.out" 2>&1 &
dur=$!
t "extend moves the deadline" test_extend
t "labels in ls, info and /run/sbx/labels" test_labels
t "env set/unset seen by later commands" test_env
t "a detached command's 5 MiB wait for a reader, then all arrive" test_detached_5m
"$SBX" kill ext
wait $dur && echo "ok - $SUITE: a 20 s lifetime powers off on time, QEMU exits 0" ||
	echo "not ok - $SUITE: a 20 s lifetime powers off on time, QEMU exits 0"
sed 's/^/#/' "$T_TMP/duration.out" | grep -v '^#$' >&2
t "a session sandbox whose client is killed powers off after the grace" test_session_ends
t "a session that comes back within the grace keeps it alive" test_session_reconnect
t "kill mid-command: the client is told, nothing is left" test_kill_mid_command
t "ID=\$(sbx create) returns; the session is held until sbx close" test_create_in_script
