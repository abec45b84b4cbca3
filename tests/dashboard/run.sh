#!/bin/bash
# The dashboard suite: Debian's Chromium, driven by playwright-core
# (tests/dashboard/*.test.mjs, Node's test runner), signs in to a real
# `sbx serve` on 127.0.0.1 and looks at sandboxes the @deno/sandbox SDK
# made (two small VMs of the minimal image). Installs the pinned packages
# from the committed lockfile (npm ci), makes two tokens, starts the server
# with its own state directory, and kills whatever sandbox is left.
# Screenshots are kept in build/dashboard/ (artifacts).
set -u
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
chromium=${SBX_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || bail "$chromium is missing (scripts/deps.sh installs Debian's chromium)"
cd "$here" || bail "no $here"
if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	npm ci --no-audit --no-fund >&2 || bail "npm ci failed in tests/dashboard"
fi

tmp=$(mktemp -d /tmp/sbx-dash.XXXXXX) || bail "mktemp"
export SBX_STATE_DIR=$tmp/state SBX_DATA_DIR=$tmp/data
mkdir -p "$SBX_STATE_DIR" "$SBX_DATA_DIR" "$build/dashboard"
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
token2=$("$sbx" serve --tokens "$tmp/tokens" token new) || bail "sbx serve token new failed"
# Port 0: the server picks one and says which on its first line. The
# minimal image: the tests run busybox tools only.
"$sbx" serve --listen 127.0.0.1:0 --expose-listen none --tokens "$tmp/tokens" --image minimal --session-grace 5 \
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
export SBX_TOKEN2=$token2 SBX_CHROMIUM=$chromium SBX_SHOTS=$build/dashboard
timeout 900 node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 ./*.test.mjs
status=$?
if ! kill -0 "$server" 2>/dev/null; then
	echo "not ok - sbx serve died during the tests"
	status=1
fi
echo "# sbx serve's log:"
sed 's/^/#   /' "$tmp/serve.log" | tail -n 40
exit $status
