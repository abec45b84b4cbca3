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
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/serve_runner.sh"

chromium=${SBX_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || bail "$chromium is missing (scripts/deps.sh installs Debian's chromium)"
serve_init dashboard
mkdir -p "$build/dashboard"

token=$("$sbx" serve --tokens "$tmp/tokens" token new) || bail "sbx serve token new failed"
token2=$("$sbx" serve --tokens "$tmp/tokens" token new) || bail "sbx serve token new failed"
# Port 0: the server picks one and says which on its first line. The
# minimal image: the tests run busybox tools only.
serve_start port "$tmp/serve.log" http --listen 127.0.0.1:0 --expose-listen none \
	--tokens "$tmp/tokens" --image minimal --session-grace 5

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-keyout "$tmp/tls.key" -out "$tmp/tls.pem" 2>"$tmp/openssl.log" ||
	bail "openssl could not make a certificate: $(cat "$tmp/openssl.log")"
SBX_STATE_DIR=$tmp/state-tls serve_start tls_port "$tmp/serve-tls.log" https \
	--listen 127.0.0.1:0 --expose-listen none --tokens "$tmp/tokens" \
	--listen-cert "$tmp/tls.pem" --listen-key "$tmp/tls.key"

export DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_TOKEN=$token
export SBX_TOKEN2=$token2 SBX_CHROMIUM=$chromium SBX_SHOTS=$build/dashboard SBX_BIN=$sbx
export SBX_TLS_BASE=https://127.0.0.1:$tls_port SBX_TLS_CA=$tmp/tls.pem
timeout 900 node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 ./*.test.mjs
serve_finish $? "$tmp/serve.log"
