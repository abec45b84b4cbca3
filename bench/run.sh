#!/bin/bash
# make bench: every benchmark in one run, on this machine; writes
# bench/results.md. Each figure is paired with its baseline in the same
# run (see ../shared/BENCH.md for why only ratios count here).
set -eu
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
OUT=bench/results.md
EXEC_N=${EXEC_N:-2000}
STREAM_RUNS=${STREAM_RUNS:-5}
TMP=$(mktemp -d /tmp/sbx-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

"$B/sbx-init" --listen "unix:$TMP/agent.sock" >"$TMP/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 100); do [ -S "$TMP/agent.sock" ] && break; sleep 0.05; done
ADDR=unix:$TMP/agent.sock
"$B/sbx" --connect "$ADDR" exec true
SERVER=$(pgrep -P $AGENT -f -- --server)

{
	echo "# sbx benchmark results"
	echo
	echo "Produced by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC'): $(nproc) cores,"
	echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)."
	echo "Agent in development mode (\`sbx-init --listen unix:PATH\`); clients in-process (libsbx)."
	echo "Ratios are computed pair by pair (sbx and its baseline alternate) and their median given."
	echo
	echo "## Core: exec and streams"
	echo
	echo "| measurement | side | N | median | p99 / range | ratio to baseline |"
	echo "|---|---|---|---|---|---|"
	"$B/sbx-bench" exec "$ADDR" "$EXEC_N"
	"$B/sbx-bench" stdout "$ADDR" 1G "$STREAM_RUNS"
	"$B/sbx-bench" stdin "$ADDR" 1G "$STREAM_RUNS"
	echo
	echo "## Footprint"
	echo
	echo "| what | value | goal |"
	echo "|---|---|---|"
	echo "| sbx-init, static and stripped | $(($(stat -c %s "$B/sbx-init") / 1024)) KiB | ≤ 400 KiB |"
	echo "| RSS of PID 1, idle | $(rss_kib $AGENT) KiB | ≤ 1024 KiB |"
	echo "| RSS of the server, idle | $(rss_kib "$SERVER") KiB | ≤ 1024 KiB |"
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "wrote $OUT"
