#!/bin/bash
# The SDK suite: the unmodified @deno/sandbox SDK (tests/sdk/*.test.mjs,
# Node's test runner) against a real `sbx serve` on 127.0.0.1 booting real
# VMs. Installs the pinned packages from the committed lockfile (npm ci),
# makes a token, starts the server with its own state directory, runs the
# tests one at a time with TAP output, and kills whatever sandbox is left.
# `run.sh sdk-deno` runs the same files, and using.test.ts (`await using`),
# under Deno (the @deno/linux-x64-glibc binary of the lockfile, the one the
# Debian image has) with its node:test support instead of Node.
# SBX_SDK_FILES (e.g. ./deno.test.mjs) runs some files only, for development.
# The SDK's `sh` runs bash: the server boots its default image, Debian,
# found as build/images/debian (an image file), else $SBX_DEBIAN_BASE or
# the first build/images/*/base.erofs.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/tests/serve_runner.sh"

runtime=${1:-sdk}
case $runtime in sdk | sdk-deno) ;; *) bail "usage: run.sh [sdk | sdk-deno]" ;; esac
serve_init sdk

image=$root/build/images/debian/image
if [ ! -e "$image" ]; then
	base=${SBX_DEBIAN_BASE:-$(ls "$root"/build/images/*/base.erofs 2>/dev/null | head -n 1)}
	[ -n "$base" ] && [ -e "$base" ] || bail "no Debian image: build one, or set SBX_DEBIAN_BASE to its base.erofs"
	mkdir -p "$(dirname "$image")"
	printf 'base = %s\nuser = app\nworkdir = /home/app\n' "$base" >"$image"
fi

token=$("$sbx" serve --tokens "$tmp/tokens" token new) || bail "sbx serve token new failed"
# Port 0: the server picks one and says which on its first line.
unset SBX_IMAGE
# exposeHttp's TLS listener on any port too; its CA is made under the
# data directory and named in the log.
serve_start port "$tmp/serve.log" http --listen 127.0.0.1:0 --expose-listen 127.0.0.1:0 \
	--tokens "$tmp/tokens" --session-grace 5
ca=$(sed -n 's|.*clients trust the CA \(.*\))$|\1|p' "$tmp/serve.log")
[ -n "$ca" ] && [ -e "$ca" ] || bail "sbx serve named no CA for exposeHttp: $(cat "$tmp/serve.log")"
export SBX_SERVE_CA=$ca

export DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port
export DENO_DEPLOY_TOKEN=$token
export SBX=$sbx # for tests that look at the CLI side
# Only the tests' own result lines start at column 0 in Node's TAP.
# Bounded: a test that hangs fails (--test-timeout) and so does a runner
# that never exits (a socket left open), rather than holding the VM lock.
if [ "$runtime" = sdk-deno ]; then
	deno=$here/node_modules/@deno/linux-x64-glibc/deno
	[ -x "$deno" ] || bail "$deno is missing (npm ci in tests/sdk)"
	NO_COLOR=1 timeout 1800 "$deno" test -A --no-check --node-modules-dir=manual --reporter=tap \
		${SBX_SDK_FILES:-./*.test.mjs ./*.test.ts}
else
	timeout 1800 node --test --test-reporter=tap --test-concurrency=1 --test-timeout=200000 \
		${SBX_SDK_FILES:-./*.test.mjs}
fi
serve_finish $? "$tmp/serve.log"
