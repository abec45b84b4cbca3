#!/bin/bash
# bench/dashboard.sh: the dashboard of `sbx serve` (issue 22), as markdown
# for bench/results.md (bench/dashboard.mjs drives Debian's Chromium with
# the playwright-core of tests/dashboard):
#  - time to first paint of the list with DASH_N sandboxes' worth of
#    records, DASH_RUNS page loads of a signed-in browser;
#  - the server's CPU (utime + stime of its /proc/PID/stat) over
#    DASH_WINDOW_S seconds idle, then while DASH_PAGES browser contexts
#    (each its own session, as separate browsers) watch the list live,
#    then idle again: same server, same run.
# The records are generated, not booted: DASH_N state directories of the
# kind `sbx serve` finds again after a restart (a meta file labelled with
# the bench token's owner), each with a `sleep` standing in for its QEMU
# (its command line names the directory, as the launcher's liveness check
# asks) and an agent address nothing listens on. No VM, no code path of
# the server that production does not have. Leaves nothing running.
# Environment: DASH_N (100), DASH_RUNS (5), DASH_PAGES (10),
# DASH_WINDOW_S (30).
set -eu
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$PWD
B=$(realpath "${SBX_BUILD:-build}")
SBX=$B/sbx
N=${DASH_N:-100}
KV=${BENCH_KV:-/dev/null}
chromium=${SBX_CHROMIUM:-/usr/bin/chromium}
command -v node >/dev/null || { echo "bench/dashboard.sh: node is needed (scripts/deps.sh)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "bench/dashboard.sh: python3 is needed (scripts/deps.sh)" >&2; exit 1; }
[ -x "$chromium" ] || { echo "bench/dashboard.sh: $chromium is missing (scripts/deps.sh)" >&2; exit 1; }
[ -x "$SBX" ] || { echo "bench/dashboard.sh: $SBX is missing (make)" >&2; exit 1; }
(cd tests/dashboard && { [ -e node_modules/.package-lock.json ] || npm ci --no-audit --no-fund >&2; })

TMP=$(mktemp -d /tmp/sbx-dashbench.XXXXXX)
export SBX_STATE_DIR=$TMP/state SBX_DATA_DIR=$TMP/data
mkdir -p "$SBX_STATE_DIR" "$SBX_DATA_DIR"
server=
fakes=()
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	for p in "${fakes[@]}"; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

token=$("$SBX" serve --tokens "$TMP/tokens" token new)
# The owner label serve gives a token's sandboxes: BLAKE2b-128 of the token
# keyed with "sbx-serve-owner" (serve/tokens.c).
owner=$(python3 -c 'import hashlib, sys
print(hashlib.blake2b(sys.argv[1].encode(), digest_size=16, key=b"sbx-serve-owner").hexdigest())' "$token")
alphabet=0123456789abcdefghjkmnpqrstuvwxyz
now=$(date +%s)
for i in $(seq "$N"); do
	id=sbx_loc_
	for _ in $(seq 20); do
		id+=${alphabet:$((RANDOM % 32)):1}
	done
	dir=$SBX_STATE_DIR/$id
	mkdir "$dir"
	# argv[0] is the directory: /proc/PID/cmdline names it.
	(exec -a "$dir" sleep 100000) &
	fakes+=($!)
	cat >"$dir/meta" <<-EOF
	id = $id
	addr = unix:$dir/nothing.sock
	accel = tcg
	image = minimal
	created = $((now - i * 37))
	memory_mib = $((512 + (i % 4) * 256))
	cpus = 1
	lifetime = duration
	lifetime_s = $((3600 + i * 60))
	qemu_pid = $!
	label.sbx.serve.owner = $owner
	label.agentId = agent-$((i % 10))
	label.customerId = customer-$i
	EOF
done

: >"$TMP/serve.log"
"$SBX" serve --listen 127.0.0.1:0 --expose-listen none --tokens "$TMP/tokens" >"$TMP/serve.log" 2>&1 &
server=$!
port=$(serve_port "$TMP/serve.log") || exit 1
found=$(sed -n 's/.* \([0-9]*\) sandbox\(es\)\? found again.*/\1/p' "$TMP/serve.log")
[ "$found" = "$N" ] || { echo "bench/dashboard.sh: sbx serve found $found of the $N records: $(cat "$TMP/serve.log")" >&2; exit 1; }

echo "Chromium $("$chromium" --version 2>/dev/null | sed 's/^Chromium //; s/ .*//'), playwright-core" \
	"$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' tests/dashboard/node_modules/playwright-core/package.json | head -n 1)," \
	"\`sbx serve\` on 127.0.0.1 (plain HTTP) with $N generated sandbox records (not booted: see bench/dashboard.sh)."
echo
DASH_BASE=http://127.0.0.1:$port DASH_TOKEN=$token DASH_SERVER_PID=$server DASH_N=$N \
	DASH_CLK_TCK=$(getconf CLK_TCK) SBX_CHROMIUM=$chromium \
	DASH_PW=$root/tests/dashboard/node_modules/playwright-core/index.mjs \
	node bench/dashboard.mjs 2>"$TMP/err" || rc=$?
sed -n 's/^KV //p' "$TMP/err" >>"$KV"
grep -v '^KV ' "$TMP/err" >&2 || true
kill -0 "$server" 2>/dev/null || { echo "bench/dashboard.sh: sbx serve died: $(tail -n 5 "$TMP/serve.log")" >&2; exit 1; }
exit "${rc:-0}"
