#!/bin/bash
# The agent's server killed with SIGKILL mid-command (issue 7): the time
# from the kill to the end of the next successful exec, while PID 1
# restarts the server, paired trial by trial with a plain exec round trip.
# tests/tools/sbx-restart.c does the work (`make tools`); for a unix:
# address it kills the server from the host, elsewhere it needs workloads
# to be allowed to (see that file).
#   bench/restart.sh ADDR [N]     N trials, default 20 (1.2 s apart)
# Prints markdown rows: | measurement | side | N | median | range | ratio |
# (per-trial figures on stderr), the last one the number of commands the
# restarted server failed to take back (a bug when not 0: it is reported,
# and the bench goes on).
set -eu
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
tool=$B/tests/tools/sbx-restart
if [ $# -lt 1 ]; then
	echo "usage: bench/restart.sh ADDR [N]" >&2
	exit 2
fi
if [ ! -x "$tool" ]; then
	echo "bench/restart.sh: $tool is missing (make tools)" >&2
	exit 1
fi
rc=0
"$tool" "$1" "${2:-${RESTART_N:-20}}" || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ]
