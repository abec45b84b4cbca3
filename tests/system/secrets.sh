#!/bin/bash
# System tests for secrets (docs/protocol/secrets.md): a real Debian
# sandbox created with --secret, whose programs (curl, Python, Node, Deno)
# send the stand-in of $OPENAI_API_KEY to HTTPS servers in a network
# namespace this suite creates (secrets_net.sh); the server logs what it
# receives on the host and answers only "received", so that the value
# never travels back into the guest. Needs root.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/integration/secrets_net.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
HOST=198.51.100.25
GOOD=198.51.100.26
BAD=198.51.100.27
ID=sec
VALUE=sk-live-$RANDOM$RANDOM-7c0ffee
VALUE2=second-$RANDOM$RANDOM-value
SEEN=$T_TMP/received.log

setup() {
	[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)" || return 1
	secrets_net_up sbxss$$ $HOST $GOOD $BAD "$SEEN" || fail "cannot create the test network" ||
		return 1
	# Plain HTTP on port 80 of the same address.
	mkdir -p "$T_TMP/www" && echo plain >"$T_TMP/www/index.html"
	ip netns exec sbxss$$ python3 -m http.server --bind $GOOD --directory "$T_TMP/www" 80 \
		>/dev/null 2>&1 &
	on_exit "kill $!"
	printf '%s\n' "$VALUE" >"$T_TMP/value" && chmod 600 "$T_TMP/value"
	CREATED=$(date +%s)
	printf '%s' "$VALUE2" | SBX_EGRESS_CA_FILE=$SECRETS_CA "$SBX" create --name $ID \
		--lifetime 10m --image debian \
		--secret "OPENAI_API_KEY=api.test,bad.test:@$T_TMP/value" \
		--secret "OTHER_KEY=*.other.test:-" --allow-net plain.test:443 --allow-net plain.test:80 \
		--resolve api.test=$GOOD --resolve plain.test=$GOOD --resolve bad.test=$BAD \
		--resolve x.other.test=$GOOD >/dev/null 2>"$T_TMP/create.err" ||
		fail "create: $(cat "$T_TMP/create.err")" || return 1
	"$SBX" cp "$SECRETS_CA" $ID:/tmp/testca.pem || fail "cannot copy the test CA in"
}

gsh() { "$SBX" exec $ID -- bash -c "$1"; }

# received PATH TEXT: the server logged a request for PATH carrying TEXT.
received() {
	grep -F "target=$1 " "$SEEN" | grep -qF "$2" || fail "$1: $(grep -F "target=$1 " "$SEEN")"
}

test_standin_in_guest() {
	local s
	s=$(gsh 'echo "$OPENAI_API_KEY"')
	[[ $s == sbxsecret_* ]] || fail "the guest sees '$s'" || return 1
	[[ $s != *"$VALUE"* ]] || fail "the guest sees the value" || return 1
	STANDIN=$s
	"$SBX" info $ID | grep -q 'api.test:443' || fail "api.test:443 not in the allow list: $("$SBX" info $ID)"
}

test_curl() {
	local out
	out=$(gsh 'curl -sS https://api.test/curl -H "Authorization: Bearer $OPENAI_API_KEY" 2>&1')
	expect_eq "curl" "$out" "received" || return 1
	received /curl "authorization=Bearer $VALUE" || return 1
	"$SBX" logs --net $ID | grep -q 'secret=OPENAI_API_KEY .*substituted in the Authorization header' ||
		fail "no audit line: $("$SBX" logs --net $ID | tail -3)"
}

test_python() {
	local out
	out=$(gsh 'python3 -c "
import os, urllib.request
r = urllib.request.Request(\"https://api.test/python\", headers={\"Authorization\": \"Bearer \" + os.environ[\"OPENAI_API_KEY\"]})
print(urllib.request.urlopen(r).read().decode().strip())" 2>&1')
	expect_eq "python urllib" "$out" "received" || return 1
	received /python "Bearer $VALUE"
}

test_node() {
	local out
	out=$(gsh 'node -e "fetch(\"https://api.test/node\", {headers: {Authorization: \"Bearer \" + process.env.OPENAI_API_KEY}}).then(r => r.text()).then(t => console.log(t.trim()), e => console.log(String(e.cause || e)))" 2>&1')
	expect_eq "node fetch" "$out" "received" || return 1
	received /node "Bearer $VALUE"
}

test_deno() {
	local out
	out=$(gsh 'cd /tmp && deno eval "const r = await fetch(\"https://api.test/deno\", {headers: {Authorization: \"Bearer \" + Deno.env.get(\"OPENAI_API_KEY\")}}); console.log((await r.text()).trim())" 2>&1')
	expect_eq "deno fetch" "$out" "received" || return 1
	received /deno "Bearer $VALUE"
}

# URL-encoded (curl -d) and JSON (curl --json) bodies: rewritten, with
# their Content-Length, which the server reads the body by.
test_bodies() {
	local out
	out=$(gsh 'curl -sS https://api.test/form -d "key=$OPENAI_API_KEY&x=1"; curl -sS https://api.test/json --json "{\"key\": \"$OPENAI_API_KEY\"}"' 2>&1)
	expect_eq "curl -d, curl --json" "$out" "received
received" || return 1
	received /form "body=key=$VALUE&x=1" || return 1
	received /json "body={\"key\": \"$VALUE\"}" || return 1
	"$SBX" logs --net $ID | grep -q 'secret=OPENAI_API_KEY .*substituted in the JSON body' ||
		fail "no audit line for the JSON body: $("$SBX" logs --net $ID | tail -3)"
}

# ALPN: the gateway chooses http/1.1 when the client offers h2 too.
test_http2_falls_back() {
	local out
	out=$(gsh 'curl -sS --http2 -o /dev/null -w "%{http_version}" https://api.test/h2 -H "Authorization: Bearer $OPENAI_API_KEY"' 2>&1)
	expect_eq "curl --http2: HTTP version" "$out" "1.1" || return 1
	received /h2 "authorization=Bearer $VALUE"
}

# The CA the guest trusts: valid from 5 minutes before create to the end
# of the sandbox's lifetime (10m) plus 5 minutes for the boot, no more;
# constrained to the secrets' hosts.
test_ca_lifetime() {
	local ca=$T_TMP/guest-ca.pem start end
	gsh 'cat /run/sbx/egress-ca.pem' >"$ca" || return 1
	start=$(date -d "$(openssl x509 -in "$ca" -noout -startdate | cut -d= -f2)" +%s) &&
		end=$(date -d "$(openssl x509 -in "$ca" -noout -enddate | cut -d= -f2)" +%s) ||
		fail "cannot read the CA's dates" || return 1
	(((end - start) >= 1199 && (end - start) <= 1201)) ||
		fail "valid for $((end - start)) s, not 1200" || return 1
	((start >= CREATED - 300 - 5 && start <= CREATED - 300 + 30)) ||
		fail "notBefore $start, created $CREATED" || return 1
	openssl x509 -in "$ca" -noout -ext nameConstraints >"$T_TMP/nc" &&
		grep -q 'DNS:api.test' "$T_TMP/nc" && grep -q 'DNS:other.test' "$T_TMP/nc" &&
		! grep -q 'plain.test' "$T_TMP/nc" || fail "name constraints: $(cat "$T_TMP/nc")"
}

# The same stand-in to an allowed host without that secret: as it was.
test_other_host_unchanged() {
	local out
	out=$(gsh 'curl -sS --cacert /tmp/testca.pem https://plain.test/plain -H "Authorization: Bearer $OPENAI_API_KEY" 2>&1')
	expect_eq "curl plain.test" "$out" "received" || return 1
	received /plain "authorization=Bearer $STANDIN"
}

# In plain HTTP the stand-in goes as it is, and the audit says so (the
# gateway looks at a connection's first bytes; retried: under load they
# may come after its 200 ms wait).
test_plain_http_audited() {
	local i out
	for i in 1 2 3; do
		out=$(gsh 'curl -sS http://plain.test/ -H "Authorization: Bearer $OPENAI_API_KEY"' 2>&1)
		expect_eq "curl http://plain.test/" "$out" "plain" || return 1
		"$SBX" logs --net $ID | grep -q 'dest="plain.test:80".*OPENAI_API_KEY sent unchanged' &&
			return 0
	done
	fail "no audit line: $("$SBX" logs --net $ID | grep plain.test:80)"
}

# A wildcard secret read from standard input.
test_stdin_wildcard() {
	local out
	out=$(gsh 'curl -sS https://x.other.test/w -H "X-Key: $OTHER_KEY" 2>&1')
	expect_eq "curl x.other.test" "$out" "received" || return 1
	received /w "x-key=$VALUE2"
}

test_untrusted_refused() {
	local out
	out=$(gsh 'curl -sS https://bad.test/ -H "Authorization: Bearer $OPENAI_API_KEY" 2>&1; echo')
	[[ $out == *"the certificate of bad.test is not trusted"* ]] || fail "curl said: $out" || return 1
	"$SBX" logs --net $ID | grep -q 'verdict=deny dest="bad.test:443".*not trusted' ||
		fail "no deny line: $("$SBX" logs --net $ID | grep bad.test)"
}

test_oversized_then_serving() {
	local out
	out=$(gsh 'curl -sS -o /dev/null -w "%{http_code}" https://api.test/ -H "X-Big: $(head -c 40000 /dev/zero | tr "\0" a)" 2>&1')
	expect_eq "oversized head" "$out" "431" || return 1
	out=$(gsh 'printf "GET / HTTP/1.1\r\nHost api.test\r\n\r\n" | timeout 20 openssl s_client -quiet -connect api.test:443 -servername api.test 2>/dev/null | head -1')
	[[ $out == "HTTP/1.1 400 Bad Request"* ]] || fail "malformed: '$out'" || return 1
	out=$(gsh 'curl -sS https://api.test/after -H "Authorization: Bearer $OPENAI_API_KEY" 2>&1')
	expect_eq "then" "$out" "received"
}

test_value_nowhere_in_guest() {
	local disk
	# Read out of the guest and searched here: the value never goes in.
	gsh 'cat /proc/[0-9]*/environ 2>/dev/null; true' >"$T_TMP/environ" || return 1
	grep -qaF "OPENAI_API_KEY=$STANDIN" "$T_TMP/environ" || fail "no stand-in in any environment" ||
		return 1
	! grep -qaF -e "$VALUE" -e "$VALUE2" "$T_TMP/environ" || fail "the value in an environment" ||
		return 1
	! grep -qaF -e "$VALUE" -e "$VALUE2" "$SBX_STATE_DIR/$ID/console.log" \
		"$SBX_STATE_DIR/$ID/initrd.img" "$SBX_STATE_DIR/$ID/meta" ||
		fail "the value is in the console log, the guest's configuration or the metadata" ||
		return 1
	! "$SBX" logs --net $ID | grep -qF -e "$VALUE" -e "$VALUE2" || fail "the value in the audit log" ||
		return 1
	gsh 'cat /proc/cmdline' >"$T_TMP/cmdline" && grep -q . "$T_TMP/cmdline" &&
		! grep -qF -e "$VALUE" -e "$VALUE2" -e "$STANDIN" "$T_TMP/cmdline" ||
		fail "the kernel command line: $(cat "$T_TMP/cmdline")" || return 1
	# The guest's disk, after the guest has written its caches out.
	disk=$(sed -n 's/^disk = //p' "$SBX_STATE_DIR/$ID/meta")
	[ -f "$disk" ] || fail "no disk in $(cat "$SBX_STATE_DIR/$ID/meta")" || return 1
	gsh 'echo "$OPENAI_API_KEY" >"$HOME/standin.txt" && sync' || return 1
	grep -qaF "$STANDIN" "$disk" || fail "the stand-in written in the guest is not in $disk: wrong file?" ||
		return 1
	! grep -qaF -e "$VALUE" -e "$VALUE2" "$disk" || fail "the value is on the guest's disk"
}

# The SDK's secrets option through sbx serve (docs/protocol/deno.md): a
# second sandbox, made by the unmodified @deno/sandbox SDK, whose curl
# sends the stand-in to api.test. serve has no --resolve: it runs in a
# mount namespace of its own where /etc/hosts names api.test.
test_sdk_through_serve() {
	local sdk=$ROOT/tests/sdk port= out i pid
	if [ ! -e "$sdk/node_modules/@deno/sandbox" ]; then
		(cd "$sdk" && npm ci --no-audit --no-fund >&2) || fail "npm ci in tests/sdk" || return 1
	fi
	printf '%s api.test\n' $GOOD >"$T_TMP/hosts"
	"$SBX" serve --tokens "$T_TMP/tokens" token new >"$T_TMP/token" || return 1
	# Its own state directory: the sandbox above is not its to find.
	mkdir -p "$T_TMP/state2" || return 1
	on_exit 'for d in "$T_TMP"/state2/*/; do [ -d "$d" ] && SBX_STATE_DIR=$T_TMP/state2 "$SBX" kill "$(basename "$d")"; done'
	SBX_STATE_DIR=$T_TMP/state2 SBX_IMAGE=debian SBX_EGRESS_CA_FILE=$SECRETS_CA unshare --mount sh -c \
		'mount --bind "$1" /etc/hosts && exec "$2" serve --listen 127.0.0.1:0 --tokens "$3"' \
		sh "$T_TMP/hosts" "$SBX" "$T_TMP/tokens" >"$T_TMP/serve.log" 2>&1 &
	pid=$!
	on_exit "kill $pid"
	for i in $(seq 100); do
		port=$(sed -n 's|^sbx serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$T_TMP/serve.log")
		[ -n "$port" ] && break
		sleep 0.1
	done
	[ -n "$port" ] || fail "sbx serve did not start: $(cat "$T_TMP/serve.log")" || return 1
	out=$(cd "$sdk" && DENO_SANDBOX_ENDPOINT=http://127.0.0.1:$port \
		DENO_DEPLOY_ENDPOINT=http://127.0.0.1:$port DENO_DEPLOY_TOKEN=$(cat "$T_TMP/token") \
		V=$VALUE timeout 300 node --input-type=module -e '
import { Sandbox } from "@deno/sandbox";
const sb = await Sandbox.create({ timeout: "5m",
  secrets: { OPENAI_API_KEY: { hosts: ["api.test"], value: process.env.V } } });
try {
  console.log((await sb.sh`curl -sS https://api.test/sdk -H "Authorization: Bearer $OPENAI_API_KEY"`.text()).trim());
} finally { await sb.close(); }' 2>&1)
	kill $pid
	expect_eq "SDK sandbox: curl" "$out" "received" || return 1
	received /sdk "authorization=Bearer $VALUE"
}

# The guest's RAM is QEMU's shared memfd: read it whole from the host,
# after the requests above. The stand-in is there (the positive control).
test_value_not_in_guest_memory() {
	local pid fd mem=
	pid=$(sed -n 's/^qemu_pid = //p' "$SBX_STATE_DIR/$ID/meta")
	[ -n "$pid" ] || fail "no qemu_pid in $(cat "$SBX_STATE_DIR/$ID/meta")" || return 1
	for fd in /proc/$pid/fd/*; do
		[[ $(readlink "$fd") == /memfd:mem* ]] && mem=$fd
	done
	[ -n "$mem" ] || fail "no memfd among QEMU's files" || return 1
	grep -qaF "$STANDIN" "$mem" || fail "the stand-in is not in guest memory: wrong file?" ||
		return 1
	! grep -qaF -e "$VALUE" -e "$VALUE2" "$mem" || fail "the value is in guest memory"
}

t "setup" setup || exit 1
t "the guest sees a stand-in, not the value" test_standin_in_guest
t "curl: the server receives the value" test_curl
t "python urllib: the server receives the value" test_python
t "node fetch: the server receives the value" test_node
t "deno fetch: the server receives the value" test_deno
t "curl -d and --json: the server receives the value in the body" test_bodies
t "curl --http2 falls back to HTTP/1.1, the value substituted" test_http2_falls_back
t "the guest's CA: valid for the lifetime only, for the secrets' hosts" test_ca_lifetime
t "the stand-in to another allowed host arrives unchanged" test_other_host_unchanged
t "plain HTTP: the stand-in goes unchanged, audited" test_plain_http_audited
t "a wildcard secret given on standard input" test_stdin_wildcard
t "a server the host does not trust is refused" test_untrusted_refused
t "oversized and malformed requests: 431, 400, then serving" test_oversized_then_serving
t "the value is in no environment, console log, configuration, command line or disk" test_value_nowhere_in_guest
t "the value is nowhere in the guest's memory" test_value_not_in_guest_memory
t "the SDK's secrets option through sbx serve: the server receives the value" test_sdk_through_serve
