#!/bin/bash
# The SDK suite: the unmodified @deno/sandbox SDK (tests/sdk/*.test.mjs,
# Node's test runner) against a real `sbx serve` on 127.0.0.1 booting real
# VMs. Installs the pinned packages from the committed lockfile (npm ci),
# makes a token, starts the server with its own state directory, runs the
# tests one at a time with TAP output, and kills whatever sandbox is left.
# The SDK's `sh` runs bash: the server boots the Debian image, found as
# build/images/debian (an image file), else $SBX_DEBIAN_BASE or the first
# build/images/*/base.erofs.
set -u
# SBX_SDK_TESTS: the test files to run (default: all), e.g. ./fs.test.mjs
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/${SBX_BUILD:-build}
sbx=$build/sbx

bail() {
	echo "Bail out! $*"
	exit 1
}

[ -x "$sbx" ] || bail "$sbx is missing (make)"
command -v node >/dev/null && command -v npm >/dev/null || bail "node and npm are needed (scripts/deps.sh)"
cd "$here" || bail "no $here"
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund >&2 || bail "npm ci failed in tests/sdk"
fi

image=$root/build/images/debian/image
if [ ! -e "$image" ]; then
	base=${SBX_DEBIAN_BASE:-$(ls "$root"/build/images/*/base.erofs 2>/dev/null | head -n 1)}
	[ -n "$base" ] && [ -e "$base" ] || bail "no Debian image: build one, or set SBX_DEBIAN_BASE to its base.erofs"
	mkdir -p "$(dirname "$image")"
	printf 'base = %s\nuser = app\nworkdir = /home/app\n' "$base" >"$image"
fi

tmp=$(mktemp -d /tmp/sbx-sdk.XXXXXX) || bail "mktemp"
export SBX_STATE_DIR=$tmp/state SBX_DATA_DIR=$tmp/data
mkdir -p "$SBX_STATE_DIR" "$SBX_DATA_DIR"
server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	for id in $(ls "$SBX_STATE_DIR" 2>/dev/null); do
		[ -e "$SBX_STATE_DIR/$id/meta" ] && "$sbx" kill "$id" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

token=$("$sbx" serve --tokens "$tmp/tokens" token new) || bail "sbx serve token new failed"
# Port 0: the server picks one and says which on its first line.
"$sbx" serve --listen 127.0.0.1:0 --tokens "$tmp/tokens" --image debian --session-grace 5 \
	>"$tmp/serve.log" 2>&1 &
server=$!
port=
for _ in $(seq 100); do
	port=$(sed -n 's|^sbx serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$tmp/serve.log")
	[ -n "$port" ] && break
	kill -0 "$server" 2>/dev/null || break
	sleep 0.1
done
[ -n "$port" ] || bail "sbx serve did not start: $(cat "$tmp/serve.log")"

export DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_TOKEN=$token
export SBX=$sbx # for tests that look at the CLI side
# Only the tests' own result lines start at column 0 in Node's TAP.
# Bounded: a test that hangs fails (--test-timeout) and so does a runner
# that never exits (a socket left open), rather than holding the VM lock.
timeout 1800 node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 ${SBX_SDK_TESTS:-./*.test.mjs}
status=$?
if ! kill -0 "$server" 2>/dev/null; then
	echo "not ok - sbx serve died during the tests"
	status=1
fi
echo "# sbx serve's log:"
sed 's/^/#   /' "$tmp/serve.log" | tail -n 40
exit $status
