#!/bin/bash
# The dashboard suite: Debian's Chromium, driven by playwright-core
# (tests/dashboard/*.test.mjs, Node's test runner), signs in to a real
# `sbx serve` on 127.0.0.1 and looks at sandboxes the @deno/sandbox SDK
# made (two small VMs of the minimal image). Installs the pinned packages
# from the committed lockfile (npm ci), makes two tokens, starts the server
# with its own state directory, and kills whatever sandbox is left. A
# second server, without sandboxes, listens over TLS (a self-signed
# certificate for 127.0.0.1 made here) for the Secure cookie's test.
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
tls_server=
cleanup() {
	[ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
	[ -n "$tls_server" ] && kill "$tls_server" 2>/dev/null && wait "$tls_server" 2>/dev/null
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
: >"$tmp/serve.log"
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

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/tls.key" -out "$tmp/tls.pem" 2>"$tmp/openssl.log" ||
	bail "openssl could not make a certificate: $(cat "$tmp/openssl.log")"
: >"$tmp/serve-tls.log"
SBX_STATE_DIR=$tmp/state-tls "$sbx" serve --listen 127.0.0.1:0 --expose-listen none \
	--tokens "$tmp/tokens" --listen-cert "$tmp/tls.pem" --listen-key "$tmp/tls.key" \
	>"$tmp/serve-tls.log" 2>&1 &
tls_server=$!
tls_port=
for _ in $(seq 100); do
	tls_port=$(sed -n 's|^sbx serve: listening on https://127.0.0.1:\([0-9]*\) .*|\1|p' "$tmp/serve-tls.log")
	[ -n "$tls_port" ] && break
	kill -0 "$tls_server" 2>/dev/null || break
	sleep 0.1
done
[ -n "$tls_port" ] || bail "sbx serve over TLS did not start: $(cat "$tmp/serve-tls.log")"

export DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_TOKEN=$token
export SBX_TOKEN2=$token2 SBX_CHROMIUM=$chromium SBX_SHOTS=$build/dashboard SBX_BIN=$sbx
export SBX_TLS_BASE=https://127.0.0.1:$tls_port SBX_TLS_CA=$tmp/tls.pem
timeout 900 node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 ./*.test.mjs
status=$?
if ! kill -0 "$server" 2>/dev/null; then
	echo "not ok - sbx serve died during the tests"
	status=1
fi
echo "# sbx serve's log:"
sed 's/^/#   /' "$tmp/serve.log" | tail -n 40
exit $status
