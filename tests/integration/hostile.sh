#!/bin/bash
# Hostile inputs against the real agent (issue 7): the table of
# tests/tools/sbx-hostile.c (build/tests/tools/sbx-hostile, `make tools`),
# sent over the agent's Unix socket, with the agent as an ordinary process
# and as PID 1 of its own user+pid+mount namespaces. Each case checks the
# answer (ERROR code and message, or EXIT), then that the same server
# process still runs commands and is back to its fd count and RSS (within
# HOSTILE_RSS_SLACK_KIB, 512 KiB by default; 256 MiB for the ASan build,
# whose quarantine keeps freed memory). Afterwards: the server was never
# restarted, and nothing is left as a zombie.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/agent.sh"

HOSTILE=${SBX_TOOLS:-$ROOT/build/tests/tools}/sbx-hostile
case $BUILD in */asan*) export HOSTILE_RSS_SLACK_KIB=${HOSTILE_RSS_SLACK_KIB:-262144} ;; esac

test_no_restart() { # SERVER_PID
	[ "$(server_pid)" == "$1" ] || fail "the server changed from $1 to '$(server_pid)'" || return 1
	! grep -E "the server (was killed|exited)" "$AGENT_LOG" >&2 || fail "the server died"
}

test_no_zombies() {
	wait_for 5 test -z "$(zombies_under "$INIT_PID")" || fail "zombies: $(zombies_under "$INIT_PID")"
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
	HOSTILE_SUITE=$SUITE timeout 600 "$HOSTILE" "$SBX_CONNECT" "$srv" "$T_TMP/scratch-$mode" ||
		echo "# the driver reported failures (above)"
	t "the server was never restarted" test_no_restart "$srv"
	t "no zombies under PID 1" test_no_zombies
	stop_agent "$INIT_PID" "$AGENT_JOB"
done
