#!/bin/bash
# Integration tests for secrets in the egress gateway (`sbx gateway
# --secret`, host side only): the real gateway on its Unix socket, driven
# as the guest's proxy would drive it, then TLS as a guest client would
# speak it (secrets_peer.py), against HTTPS servers in a network namespace
# this suite creates (secrets_net.sh). Needs root.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/secrets_net.sh"

HOST=198.51.100.17
GOOD=198.51.100.18
BAD=198.51.100.19
SOCK=$T_TMP/g.sock
AUDIT=$T_TMP/egress.log
VALUE=sk-test-9f8e7d6c5b4a
VALUE2=other-secret-value-42

setup() {
	[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)" || return 1
	secrets_net_up sbxsc$$ $HOST $GOOD $BAD || fail "cannot create the test network" || return 1
	SBX_EGRESS_CA_FILE=$SECRETS_CA "$SBX" gateway --listen "$SOCK" --audit "$AUDIT" \
		--allow api.test --allow other.test --allow plain.test --allow bad.test \
		--resolve api.test=$GOOD --resolve other.test=$GOOD --resolve plain.test=$GOOD \
		--resolve bad.test=$BAD --secret "KEY=api.test,bad.test:$VALUE" \
		--secret "KEY2=other.test:$VALUE2" --ca-out "$T_TMP/sbxca.pem" \
		>"$T_TMP/standins" 2>"$T_TMP/gateway.err" &
	GW=$!
	on_exit "kill $GW"
	wait_for 5 test -S "$SOCK" || fail "the gateway did not start: $(cat "$T_TMP/gateway.err")" ||
		return 1
	STANDIN=$(sed -n 's/^KEY=//p' "$T_TMP/standins")
	[[ $STANDIN == sbxsecret_* && $STANDIN != *"$VALUE"* ]] || fail "stand-in: '$STANDIN'"
}

# https HOST CAFILE REQUEST: the response (the ALPN chosen in $T_TMP/alpn).
https() {
	timeout 30 python3 "$SECRETS_PEER" client "$SOCK" "$1" "$2" "$3" 2>"$T_TMP/alpn"
}

test_header_and_target() {
	local out
	out=$(https api.test "$T_TMP/sbxca.pem" "GET /v1?key=$STANDIN HTTP/1.1\r\nHost: api.test\r\nAuthorization: Bearer $STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"HTTP/1.1 200 OK"* ]] || fail "response: $out" || return 1
	[[ $out == *"target=/v1?key=$VALUE"* ]] || fail "target: $out" || return 1
	[[ $out == *"authorization=Bearer $VALUE"* ]] || fail "header: $out" || return 1
	[[ $out != *"$STANDIN"* ]] || fail "the stand-in reached the server: $out" || return 1
	grep -q 'verdict=secret dest="api.test:443".*secret=KEY .*KEY substituted in the Authorization header' \
		"$AUDIT" || fail "no audit line: $(cat "$AUDIT")"
}

test_alpn_http11() {
	https api.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n" >/dev/null
	expect_eq "ALPN offered h2,http/1.1" "$(cat "$T_TMP/alpn")" "alpn=http/1.1"
}

# Two requests on one connection, with a body: both rewritten, the body as it was.
test_keepalive_and_body() {
	local out
	out=$(https api.test "$T_TMP/sbxca.pem" "POST /a HTTP/1.1\r\nHost: api.test\r\nX-Key: $STANDIN\r\nContent-Length: 59\r\n\r\nbody-$STANDIN-endGET /b HTTP/1.1\r\nHost: api.test\r\nX-Key: x$STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"x-key=$VALUE"*"body=body-$STANDIN-end"*"target=/b"*"x-key=x$VALUE"* ]] ||
		fail "response: $out"
}

# KEY's stand-in to a host intercepted for KEY2 only: as it was, and said so.
test_other_host_unchanged() {
	local out
	out=$(https other.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nHost: other.test\r\nAuthorization: Bearer $STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"authorization=Bearer $STANDIN"* ]] || fail "response: $out" || return 1
	grep -q 'dest="other.test:443".*secret=KEY .*left as is in the Authorization header: other.test is not one of its hosts' \
		"$AUDIT" || fail "no audit line: $(grep other.test "$AUDIT")"
}

# A host without secrets: not intercepted (the client sees the real
# server's certificate, from the test CA), the stand-in goes as it is.
test_no_secret_not_intercepted() {
	local out
	out=$(https plain.test "$SECRETS_CA" "GET / HTTP/1.1\r\nHost: plain.test\r\nAuthorization: Bearer $STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"authorization=Bearer $STANDIN"* ]] || fail "response: $out" || return 1
	expect_eq "ALPN (the server's own)" "$(cat "$T_TMP/alpn")" "alpn=None"
}

test_untrusted_server_refused() {
	local out
	out=$(https bad.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nHost: bad.test\r\nAuthorization: Bearer $STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"HTTP/1.1 502 Bad Gateway"*"the certificate of bad.test is not trusted"* ]] ||
		fail "response: $out $(grep bad.test "$AUDIT")" || return 1
	grep -q 'verdict=deny dest="bad.test:443".*not trusted' "$AUDIT" ||
		fail "no deny line: $(grep bad.test "$AUDIT") $(cat "$T_TMP/bad.err")"
}

test_malformed_400() {
	local out
	out=$(https api.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nHost api.test\r\n\r\n")
	[[ $out == "HTTP/1.1 400 Bad Request"*"malformed HTTP request"* ]] || fail "response: $out"
}

test_oversized_431() {
	local out big
	big=$(head -c 40000 /dev/zero | tr '\0' a)
	out=$(https api.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nX-Big: $big\r\n\r\n")
	[[ $out == "HTTP/1.1 431 "*"more than 32768 bytes"* ]] || fail "response: $(echo "$out" | head -c 300)"
}

test_still_serving() {
	local out
	kill -0 $GW || fail "the gateway died" || return 1
	out=$(https api.test "$T_TMP/sbxca.pem" "GET / HTTP/1.1\r\nHost: api.test\r\nAuthorization: $STANDIN\r\nConnection: close\r\n\r\n")
	[[ $out == *"authorization=$VALUE"* ]] || fail "response: $out"
}

test_value_never_logged() {
	! grep -qF -e "$VALUE" -e "$VALUE2" "$AUDIT" "$T_TMP/gateway.err" ||
		fail "a value in the logs: $(grep -F -e "$VALUE" -e "$VALUE2" "$AUDIT" "$T_TMP/gateway.err")"
}

test_bad_secret_specs() {
	local out
	out=$(timeout 5 "$SBX" gateway --listen "$T_TMP/x.sock" --audit "$T_TMP/x.log" \
		--secret "K=api..test:v" --ca-out "$T_TMP/x.pem" 2>&1)
	[[ $out == *"api..test"* ]] || fail "a bad name: $out" || return 1
	out=$(timeout 5 "$SBX" gateway --listen "$T_TMP/x.sock" --audit "$T_TMP/x.log" \
		--secret "K=1.2.3.4:v" --ca-out "$T_TMP/x.pem" 2>&1)
	[[ $out == *"a name or *.DOMAIN"* ]] || fail "an address: $out" || return 1
	out=$(timeout 5 "$SBX" gateway --listen "$T_TMP/x.sock" --audit "$T_TMP/x.log" \
		--secret "K=api.test:$(printf 'a\rb')" --ca-out "$T_TMP/x.pem" 2>&1)
	[[ $out == *"control character"* && $out != *"a"$'\r'"b"* ]] || fail "a CR: $out"
}

t "setup" setup || exit 1
t "a stand-in in a header and the target reaches the server as the value" test_header_and_target
t "ALPN: only http/1.1 is chosen when h2 is offered" test_alpn_http11
t "keep-alive: each request rewritten, bodies pass as they are" test_keepalive_and_body
t "a stand-in to a host of another secret arrives unchanged, audited" test_other_host_unchanged
t "a host without secrets is not intercepted" test_no_secret_not_intercepted
t "a server the host does not trust: 502 to the client, deny audited" test_untrusted_server_refused
t "a malformed request gets 400" test_malformed_400
t "an oversized head gets 431" test_oversized_431
t "the gateway keeps serving after those" test_still_serving
t "no value in the audit log or the gateway's log" test_value_never_logged
t "bad --secret specs are refused, naming what is wrong" test_bad_secret_specs
