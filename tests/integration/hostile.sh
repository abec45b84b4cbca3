#!/bin/bash
# Hostile inputs against the real agent (issue 7): the tables of
# tests/tools/hostile/ (one per area; build/tests/tools/sbx-hostile, `make
# tools`), sent over the agent's Unix socket, with the agent as an
# ordinary process and as PID 1 of its own user+pid+mount namespaces.
# Each case checks the answer (ERROR code and message, or EXIT), then that
# the same server process still runs commands and is back to its fd count
# and RSS (within HOSTILE_RSS_SLACK_KIB, 512 KiB by default; with the ASan
# build (make asan) RSS says nothing, its quarantine keeps freed memory:
# 1 GiB, so only fds count). Afterwards: the server was never restarted,
# nothing is left as a zombie, and an instrumented agent logged no
# sanitizer report.
#
# A third agent has a token (docs/PROTOCOL.md, "Authentication"): the
# "auth:" cases of the table run against it.
#
# Faults, in both modes: kill -9 of the server mid-command (PID 1 restarts
# it; the command lives on, its later output and status reach `sbx
# attach`), repeated restarts timed by tests/tools/sbx-restart (the figures
# are bench/restart.sh's job; here each restart must just work), and no
# zombies afterwards.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/agent.sh"

TOOLS=${SBX_TOOLS:-$ROOT/build/tests/tools}
HOSTILE=$TOOLS/sbx-hostile
case $BUILD in */asan*) export HOSTILE_RSS_SLACK_KIB=${HOSTILE_RSS_SLACK_KIB:-1048576} ;; esac

test_no_restart() { # SERVER_PID
	[ "$(server_pid)" == "$1" ] || fail "the server changed from $1 to '$(server_pid)'" || return 1
	! grep -E "the server (was killed|exited)" "$AGENT_LOG" >&2 || fail "the server died"
}

# An instrumented agent (make asan) writes what it finds to its log.
test_no_sanitizer_reports() {
	! grep -E "AddressSanitizer|LeakSanitizer|runtime error:" "$AGENT_LOG" >&2 ||
		fail "sanitizer reports in $AGENT_LOG (above)"
}

test_no_zombies() {
	wait_for 5 test -z "$(zombies_under "$INIT_PID")" || fail "zombies: $(zombies_under "$INIT_PID")"
}

test_kill_mid_command() {
	local tag=9$RANDOM old new pid rc out
	"$SBX" exec sh -c "echo before-$tag; sleep 2; echo after-$tag; exit 7" \
		>"$T_TMP/kill.out" 2>"$T_TMP/kill.err" &
	local client=$!
	wait_for 10 grep -qs "before-$tag" "$T_TMP/kill.out" || fail "the command did not start" ||
		return 1
	old=$(server_pid)
	kill -KILL "$old"
	wait $client
	rc=$?
	expect_eq "client status when the server dies" $rc 125 || return 1
	grep -q "lost" "$T_TMP/kill.err" || fail "client said: $(cat "$T_TMP/kill.err")" || return 1
	# The next command runs on a new server ...
	expect_eq "exec after kill -9" "$("$SBX" exec echo back)" back || return 1
	new=$(server_pid)
	[ -n "$new" ] && [ "$new" != "$old" ] || fail "server not restarted ($old -> $new)" || return 1
	# ... which took the command back: its later output and its status.
	pid=$("$SBX" ps | awk -v t="before-$tag" 'index($0, t) {print $1}')
	[ -n "$pid" ] || fail "ps does not list the command: $("$SBX" ps)" || return 1
	out=$("$SBX" attach "$pid")
	rc=$?
	expect_eq "status through attach" $rc 7 && [[ $out == *"after-$tag" ]] ||
		fail "attach printed '$out'"
}

# Each trial kills the server right after a command's STARTED: the new
# server must take the command back (sbx-restart exits 3 otherwise).
test_restarts_timed() {
	local rows rc
	rows=$("$TOOLS/sbx-restart" "$SBX_CONNECT" 10 2>"$T_TMP/restart.err")
	rc=$?
	echo "$rows" | sed 's/^/#   /'
	[ $rc -eq 0 ] || fail "$(grep -v '^# trial' "$T_TMP/restart.err" | tr '\n' ' ')" || return 1
	[ -z "$("$SBX" ps | sed 1d)" ] || fail "commands left behind: $("$SBX" ps)"
}

# run_driver ARGS...: runs the table through sbx-hostile (its results go
# to the output as they come), then checks the driver itself: it must
# exit 0 (1 = it reported failed cases; 124 = timeout; anything else = it
# crashed) and have printed as many results as its plan announced, so a
# driver that dies mid-table cannot make the cases after it vanish.
run_driver() {
	local out=$T_TMP/driver.out rc plan got
	timeout 600 "$HOSTILE" "$@" | tee "$out"
	rc=${PIPESTATUS[0]}
	plan=$(sed -n 's/^# plan: \([0-9]*\) cases$/\1/p' "$out")
	got=$(grep -cE '^(not )?ok - ' "$out")
	t "the driver ran its whole plan (${plan:-?} cases) and exited 0" \
		check_driver "$rc" "$plan" "$got"
}

check_driver() { # STATUS PLAN RESULTS
	case $1 in
	0) ;;
	1) fail "the driver reported failed cases (above)" || return 1 ;;
	124) fail "the driver timed out after 600 s" || return 1 ;;
	*) fail "the driver exited with status $1 (crashed?)" || return 1 ;;
	esac
	[ -n "$2" ] || fail "the driver printed no plan" || return 1
	[ "$3" -eq "$2" ] || fail "the driver printed $3 results, its plan was $2"
}

for mode in dev pid1; do
	SUITE="hostile[$mode]"
	if [ ! -x "$HOSTILE" ]; then
		echo "not ok - $SUITE: the driver is built (make tools)"
		continue
	fi
	start_agent $mode || { echo "not ok - $SUITE: agent starts"; continue; }
	srv=$(server_pid)
	mkdir -p "$T_TMP/scratch-$mode"
	HOSTILE_SUITE=$SUITE run_driver "$SBX_CONNECT" "$srv" "$T_TMP/scratch-$mode"
	t "the server was never restarted" test_no_restart "$srv"
	t "no zombies under PID 1" test_no_zombies
	SUITE="faults[$mode]"
	t "kill -9 of the server mid-command: restarted, the command lives on" test_kill_mid_command
	if [ -x "$TOOLS/sbx-restart" ]; then
		t "10 kills right after a command started: each restarted, the command taken back" \
			test_restarts_timed
	else
		echo "not ok - $SUITE: the restart driver is built (make tools)"
	fi
	t "no zombies under PID 1 after the restarts" test_no_zombies
	stop_agent "$INIT_PID" "$AGENT_JOB"
	t_sanitizers "no sanitizer reports from the agent" test_no_sanitizer_reports
done

# An agent with a token: no answer without the proof.
SUITE="hostile[token]"
TOKEN=hostile-token-$RANDOM$RANDOM-0123456789
echo "token = $TOKEN" >"$T_TMP/token.conf"
if [ ! -x "$HOSTILE" ]; then
	echo "not ok - $SUITE: the driver is built (make tools)"
elif start_agent dev --config "$T_TMP/token.conf"; then
	srv=$(server_pid)
	HOSTILE_SUITE=$SUITE HOSTILE_TOKEN=$TOKEN run_driver "$SBX_CONNECT" "$srv" "$T_TMP"
	t "the server was never restarted" test_no_restart "$srv"
	stop_agent "$INIT_PID" "$AGENT_JOB"
	t_sanitizers "no sanitizer reports from the agent" test_no_sanitizer_reports
else
	echo "not ok - $SUITE: agent starts"
fi
