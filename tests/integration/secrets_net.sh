# Sourced by the secrets suites and bench/secrets.sh (not a suite itself):
# "the internet" for HTTPS with secrets. A network namespace (egress_net.sh
# style, but a /29 with two server addresses), a test CA the gateway is
# told to trust (SBX_EGRESS_CA_FILE), a rogue CA it does not, and
# secrets_peer.py's echo server on port 443 of both addresses:
#   $SECRETS_GOOD (certificate of the test CA for api.test, other.test,
#   *.other.test, plain.test) and $SECRETS_BAD (the same names, from the rogue CA).
#   secrets_net_up NS HOST_ADDR GOOD_ADDR BAD_ADDR [LOG]  (one /29)
# With LOG the good server logs what it receives there and answers only
# "received" (secrets_peer.py).
secrets_net_up() {
	local ns=$1 host=$2 d=$T_TMP/pki
	SECRETS_GOOD=$3
	SECRETS_BAD=$4
	SECRETS_CA=$d/ca.pem
	SECRETS_PEER=$ROOT/tests/integration/secrets_peer.py
	mkdir -p "$d" || return 1
	secrets_pki "$d" || return 1
	ip netns del "$ns" 2>/dev/null
	ip link del "${ns}h" 2>/dev/null
	ip netns add "$ns" || return 1
	on_exit "ip netns del $ns"
	ip link add "${ns}h" type veth peer name "${ns}n" || return 1
	on_exit "ip link del ${ns}h"
	ip link set "${ns}n" netns "$ns" &&
		ip addr add "$host/29" dev "${ns}h" && ip link set "${ns}h" up &&
		ip -n "$ns" addr add "$SECRETS_GOOD/29" dev "${ns}n" &&
		ip -n "$ns" addr add "$SECRETS_BAD/29" dev "${ns}n" &&
		ip -n "$ns" link set "${ns}n" up && ip -n "$ns" link set lo up || return 1
	ip netns exec "$ns" python3 "$SECRETS_PEER" server "$SECRETS_GOOD" 443 "$d/good.pem" \
		"$d/srv.key" ${5:-} 2>"$T_TMP/good.err" &
	on_exit "kill $!"
	ip netns exec "$ns" python3 "$SECRETS_PEER" server "$SECRETS_BAD" 443 "$d/bad.pem" \
		"$d/srv.key" 2>"$T_TMP/bad.err" &
	on_exit "kill $!"
	wait_for 10 eval "ip netns exec $ns ss -ltn | grep -q '$SECRETS_BAD:443'"
}

# secrets_pki DIR: ca.pem (trusted), rogue.pem, and one server key with a
# certificate from each (good.pem, bad.pem).
secrets_pki() {
	local d=$1 ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	printf 'subjectAltName=DNS:api.test,DNS:other.test,DNS:plain.test,DNS:*.other.test\n' >"$d/ext"
	openssl req -x509 $ec -keyout "$d/ca.key" -out "$d/ca.pem" -days 2 \
		-subj /CN=sbx-test-ca 2>/dev/null &&
		openssl req -x509 $ec -keyout "$d/rogue.key" -out "$d/rogue.pem" -days 2 \
			-subj /CN=sbx-rogue-ca 2>/dev/null &&
		openssl req $ec -keyout "$d/srv.key" -out "$d/srv.csr" -subj /CN=api.test \
			2>/dev/null &&
		openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
			-CAcreateserial -out "$d/good.pem" -days 2 -extfile "$d/ext" 2>/dev/null &&
		openssl x509 -req -in "$d/srv.csr" -CA "$d/rogue.pem" -CAkey "$d/rogue.key" \
			-CAcreateserial -out "$d/bad.pem" -days 2 -extfile "$d/ext" 2>/dev/null
}
