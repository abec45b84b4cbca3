#!/bin/bash
# bench/profile.sh: where the agent's time goes, for the goals that are
# close or missed; markdown for bench/results.md. This machine has no
# hardware counters for perf (`perf stat -e instructions` says "not
# supported"), so: software counters (perf stat: CPU time, context
# switches, page faults) summed over the agent's whole process tree,
# syscall counts (strace -c), and A/B runs of one configuration switch.
#
#   1. exec /bin/true: CPU time and context switches per command, the agent
#      (PID 1, server, the command) plus the client, against fork+exec+wait
#   2. exec with the workload restrictions off (config `seccomp = off`)
#      against the default, alternated in one run (what installing the
#      seccomp filter and dropping capabilities costs per command)
#   3. stdin: the server's system calls while 256 MiB go through a
#      command's stdin (how many writes into the command's pipe, how big)
#
# Environment: PROF_N (1000), PROF_STDIN_BYTES (256M).
set -eu
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
N=${PROF_N:-1000}
SB=${PROF_STDIN_BYTES:-256M}
TMP=$(mktemp -d /tmp/sbx-prof.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
say() { echo "bench/profile.sh: $*" >&2; }

agent() { # NAME [CONFIG]: starts an agent on $TMP/NAME.sock
	local name=$1
	"$B/sbx-init" --listen "unix:$TMP/$name.sock" ${2:+--config "$2"} >"$TMP/$name.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 100); do [ -S "$TMP/$name.sock" ] && break; sleep 0.05; done
	[ -S "$TMP/$name.sock" ] || { say "agent $name did not start"; exit 1; }
}
# "value" of an event in a perf stat -x, file, per operation
per_op() { awk -F, -v e="$2" -v n="$3" '$3 == e { printf "%.3f", $1 / n }' "$1"; }

EV=task-clock,context-switches,cpu-migrations,page-faults
if perf stat -e task-clock true >/dev/null 2>&1; then
	# The agent runs under perf stat, which counts its whole tree (PID 1,
	# the server, every command) until it exits.
	perf stat -e "$EV" -x, -o "$TMP/agent.stat" "$B/sbx-init" --listen "unix:$TMP/p.sock" \
		>"$TMP/p.log" 2>&1 &
	PERF=$!
	PIDS+=("$PERF")
	for _ in $(seq 100); do [ -S "$TMP/p.sock" ] && break; sleep 0.05; done
	perf stat -e "$EV" -x, -o "$TMP/client.stat" "$B/sbx-bench" rtt "unix:$TMP/p.sock" "$N" >"$TMP/sbx.t"
	perf stat -e "$EV" -x, -o "$TMP/floor.stat" "$B/sbx-bench" floor "$N" >"$TMP/floor.t"
	kill "$(pgrep -P "$PERF" sbx-init)" 2>/dev/null || true
	wait "$PERF" 2>/dev/null || true
	ops=$((N + 20)) # sbx-bench rtt warms up with 20
	med() { sort -g "$1" | awk '{ v[NR] = $1 } END { print v[int((NR - 1) / 2) + 1] }'; }
	echo "| per \`/bin/true\` (N=$N) | median wall | CPU time | context switches | page faults |"
	echo "|---|---|---|---|---|"
	echo "| floor: fork+exec+wait (sbx-bench and its child) | $(med "$TMP/floor.t") µs |" \
		"$(per_op "$TMP/floor.stat" task-clock "$N") ms | $(per_op "$TMP/floor.stat" context-switches "$N") |" \
		"$(per_op "$TMP/floor.stat" page-faults "$N") |"
	echo "| sbx: the client (libsbx, in sbx-bench) | | $(per_op "$TMP/client.stat" task-clock "$ops") ms |" \
		"$(per_op "$TMP/client.stat" context-switches "$ops") | $(per_op "$TMP/client.stat" page-faults "$ops") |"
	echo "| sbx: the agent (PID 1 + server + the command) | $(med "$TMP/sbx.t") µs (client's view) |" \
		"$(per_op "$TMP/agent.stat" task-clock "$ops") ms | $(per_op "$TMP/agent.stat" context-switches "$ops") |" \
		"$(per_op "$TMP/agent.stat" page-faults "$ops") |"
	echo
else
	echo "(perf cannot count here: no CPU time breakdown.)"
	echo
fi

# ---- 2. seccomp on / off, alternated ----
printf 'seccomp = off\n' >"$TMP/noseccomp.conf"
agent on
agent off "$TMP/noseccomp.conf"
printf -v side '%s\x1f' sbx "unix:$TMP/off.sock" "sbx with \`seccomp = off\` (no filter installed, no capabilities dropped)"
echo "| measurement | side | N | median | p99 | ratio to the floor; to sbx |"
echo "|---|---|---|---|---|---|"
"$B/sbx-bench" exec "unix:$TMP/on.sock" "$N" "${side%$'\x1f'}"
echo

# ---- 3. stdin: the server's system calls ----
if command -v strace >/dev/null; then
	agent st
	server=$(pgrep -P "${PIDS[-1]}" -f -- --server)
	strace -c -f -o "$TMP/strace" -p "$server" 2>/dev/null &
	ST=$!
	sleep 0.5
	"$B/sbx-bench" stdin "unix:$TMP/st.sock" "$SB" 1 >/dev/null
	kill -INT "$ST"
	wait "$ST" 2>/dev/null || true
	bytes=$(( $(numfmt --from=iec "$SB") * 2 )) # one run and its warm-up
	awk -v b="$bytes" -v sb="$SB" '
		$NF == "write" { w = $4; we = NF == 6 ? $5 : 0 }
		$NF == "read" { r = $4 }
		$NF == "epoll_pwait" { e = $4 }
		END {
			printf "| the server while %s go through a command'\''s stdin (twice: warm-up and run) | count | per MiB |\n", sb
			printf "|---|---|---|\n"
			printf "| write(2) into the pipe (of which EAGAIN: %d) | %d | %.1f; %.0f bytes each |\n", we, w, w / (b / 1048576), b / (w - we)
			printf "| read(2) from the socket | %d | %.1f |\n", r, r / (b / 1048576)
			printf "| epoll_pwait(2) | %d | %.1f |\n", e, e / (b / 1048576)
		}' "$TMP/strace"
	echo
fi
