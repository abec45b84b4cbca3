#!/bin/bash
# bench/sdk.sh: the @deno/sandbox SDK through `sbx serve` against the CLI,
# same sandbox, same run (bench/sdk.mjs), as markdown for
# bench/results.md: `sh` of `true` vs `sbx exec` (and whether issue 17's
# goal, at most 1.5x, is met), SDK_FS_MIB through fs.upload/download vs
# `sbx cp`, create -> first command (both sides at the SDK's 1280 MiB).
# Starts its own `sbx serve` (Debian image, as tests/sdk/run.sh finds it)
# with its own state directory and token; leaves nothing running.
# Environment: SDK_EXEC_N (100), SDK_FS_MIB (256), SDK_FS_RUNS (3),
# SDK_BOOT_RUNS (3).
set -eu
. "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/.."
root=$PWD
B=$(realpath "${SBX_BUILD:-build}")
SBX=$B/sbx
KV=${BENCH_KV:-/dev/null}
command -v node >/dev/null || { echo "bench/sdk.sh: node is needed (scripts/deps.sh)" >&2; exit 1; }
(cd tests/sdk && { [ -e node_modules/.package-lock.json ] || npm ci --no-audit --no-fund >&2; })
image=$root/build/images/debian/image
if [ ! -e "$image" ]; then
	base=${SBX_DEBIAN_BASE:-$(ls "$root"/build/images/*/base.erofs 2>/dev/null | head -n 1)}
	[ -n "$base" ] && [ -e "$base" ] || { echo "bench/sdk.sh: no Debian image" >&2; exit 1; }
	mkdir -p "$(dirname "$image")"
	printf 'base = %s\nuser = app\nworkdir = /home/app\n' "$base" >"$image"
fi
TMP=$(mktemp -d /tmp/sbx-sdkbench.XXXXXX)
export SBX_STATE_DIR=$TMP/state
mkdir -p "$SBX_STATE_DIR"
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	for id in $(ls "$SBX_STATE_DIR" 2>/dev/null); do
		[ -e "$SBX_STATE_DIR/$id/meta" ] && "$SBX" kill "$id" >/dev/null 2>&1
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
token=$("$SBX" serve --tokens "$TMP/tokens" token new)
"$SBX" serve --listen 127.0.0.1:0 --tokens "$TMP/tokens" --image debian >"$TMP/serve.log" 2>&1 &
server=$!
port=$(serve_port "$TMP/serve.log") || exit 1
echo "Node $(node --version), @deno/sandbox $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' tests/sdk/node_modules/@deno/sandbox/package.json | head -n 1),"
echo "\`sbx serve\` on 127.0.0.1 (plain HTTP), the Debian image, 1280 MiB (the SDK's default)."
echo "Each pair runs the SDK side then the CLI side; the ratio is taken pair by pair."
echo "The CLI side starts a \`sbx\` process per call, as a shell script would."
echo
BENCH_TMP=$TMP SBX=$SBX SDK_MOD=$root/tests/sdk/node_modules/@deno/sandbox/esm/mod.js \
	DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port \
	DENO_DEPLOY_TOKEN=$token node bench/sdk.mjs 2>"$TMP/err" || rc=$?
sed -n 's/^KV //p' "$TMP/err" >>"$KV"
grep -v '^KV ' "$TMP/err" >&2 || true
exit "${rc:-0}"
