#!/bin/bash
# System tests for egress: real sandboxes under QEMU. Without --allow-net
# the guest has no way out and fails at once; with it, programs in the
# guest use names and addresses as usual (busybox wget and nc, no proxy
# settings) and reach exactly what the gateway allows. "The internet" is
# a network namespace this suite creates (egress_net.sh). Needs root.
# On an image other than minimal (SBX_TEST_IMAGE=debian) the checks that
# read busybox's own messages get the minimal image's busybox and
# vsock-tool in /usr/local/bin; the HTTP GET is the image's curl.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/integration/egress_net.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
HOST=198.51.100.65
NS=198.51.100.66
OFF=egoff
ON=egon

setup() {
	[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)" || return 1
	egress_net_up sbxeg$$ $HOST $NS || fail "cannot create the test network" || return 1
	mkdir -p "$T_TMP/www" && echo "hello from api.test" >"$T_TMP/www/index.html"
	egress_httpd $NS 8080 "$T_TMP/www"
	egress_httpd $NS 8081 "$T_TMP/www"
	"$SBX" create --name $OFF --lifetime 10m >/dev/null 2>"$T_TMP/off.err" ||
		fail "create without --allow-net: $(cat "$T_TMP/off.err")" || return 1
	# As a background job of a script would: SIGINT and SIGQUIT ignored
	# (test_daemon_signals).
	(trap '' INT QUIT
	exec "$SBX" create --name $ON --lifetime 10m --allow-net api.test:8080 --allow-net loop.test \
		--allow-net priv.test --resolve api.test=$NS --resolve other.test=$NS \
		--resolve loop.test=127.0.0.1 --resolve priv.test=10.0.0.1) >/dev/null \
		2>"$T_TMP/on.err" || fail "create with --allow-net: $(cat "$T_TMP/on.err")" || return 1
	[ "$SBX_IMAGE" = minimal ] || { tools_in $OFF && tools_in $ON; }
}

# tools_in ID: the minimal image's busybox (wget, nc, nslookup) and
# vsock-tool, for an image that has other tools or none.
tools_in() {
	"$SBX" exec -i -u root "$1" -- sh -c 'cat >/usr/local/bin/busybox &&
		chmod 755 /usr/local/bin/busybox && for a in wget nc nslookup; do
		ln -sf busybox /usr/local/bin/$a; done' <"$BUILD/busybox/busybox" &&
		"$SBX" exec -i -u root "$1" -- sh -c 'cat >/usr/local/bin/vsock-tool &&
		chmod 755 /usr/local/bin/vsock-tool' <"$BUILD/vsock-tool" ||
		fail "cannot install busybox and vsock-tool in $1"
}

gexec() { "$SBX" exec "$@"; }
# As root (the default user of the minimal image, not of Debian's).
rexec() { "$SBX" exec -u root "$@"; }

# audited DEST VERDICT [WORDS]
audited() {
	local line
	line=$("$SBX" logs --net $ON | grep -F "dest=\"$1\"" | grep -F "verdict=$2" | tail -1)
	[ -n "$line" ] || fail "no '$2' line for $1 in sbx logs --net" || return 1
	[ -z "${3:-}" ] || [[ $line == *"$3"* ]] || fail "audit line for $1: $line"
}

# Fails fast: well under the time a timeout would take.
test_off_fails_fast() {
	local out
	out=$(gexec $OFF -- sh -c 'start=$(cut -d" " -f1 /proc/uptime)
		wget -q -O - http://'$NS':8080/ 2>&1; echo "wget=$?"
		nc '$NS' 8080 </dev/null 2>&1; echo "nc=$?"
		nslookup api.test 2>&1 | tail -1; echo "dns=$?"
		end=$(cut -d" " -f1 /proc/uptime); echo "secs=$(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end-$start}")"')
	[[ $out == *"Network is unreachable"*"wget=1"*"nc=1"* ]] || fail "said: $out" || return 1
	[[ $out != *"hello"* ]] || fail "reached the server: $out" || return 1
	local secs=${out##*secs=}
	awk "BEGIN { exit !($secs < 3) }" || fail "took $secs s: $out"
}

test_off_no_nameserver_no_gateway() {
	local out
	out=$(gexec $OFF -- sh -c 'grep -c nameserver /etc/resolv.conf; ip route | wc -l')
	expect_eq "nameservers, routes" "$(echo $out)" "0 0" || return 1
	[ ! -e "$SBX_STATE_DIR/$OFF/vsock.sock_1025" ] || fail "a gateway listens for $OFF" || return 1
	"$SBX" info $OFF | grep -q "allow-net:  none (no network)" || fail "info: $("$SBX" info $OFF)"
}

test_http_get() {
	local out
	out=$(gexec $ON -- sh -c 'if command -v curl >/dev/null; then curl -sS http://api.test:8080/
		else wget -q -O - http://api.test:8080/; fi' 2>&1)
	expect_eq "the page" "$out" "hello from api.test" || return 1
	audited api.test:8080 allow && audited api.test:8080 close "down="
}

test_names_resolve_synthetic() {
	local out
	out=$(gexec $ON -- nslookup api.test 2>&1)
	[[ $out == *"Address: 198.18."* || $out == *"Address 1: 198.18."* ]] || fail "said: $out"
}

# refused_in_guest URL DEST WORDS: busybox wget gets 403 from the guest's
# proxy, whose body (fetched with nc) names the reason; the gateway wrote a
# deny line.
refused_in_guest() {
	local out hostport=${1#http://}
	hostport=${hostport%%/*}
	out=$(gexec $ON -- sh -c "wget -q -O - $1 2>&1; echo rc=\$?
		{ printf 'GET / HTTP/1.0\r\n\r\n'; sleep 3; } | nc ${hostport%:*} ${hostport##*:}")
	[[ $out == *"403 Forbidden"*"rc=1"* ]] || fail "wget $1: $out" || return 1
	[[ $out == *"HTTP/1.1 403 Forbidden"*"sbx egress: "*"$3"* ]] ||
		fail "the 403's body does not say '$3': $out" || return 1
	[[ $out != *hello* ]] || fail "$1 reached the server" || return 1
	audited "$2" deny "$3"
}

test_other_port_refused() {
	refused_in_guest http://api.test:8081/ api.test:8081 "not in the allow list"
}

# No pattern can match other.test: the guest's resolver says so at once.
test_other_name_refused() {
	local out
	out=$(gexec $ON -- sh -c 'nslookup other.test 2>&1; wget -q -O - http://other.test:8080/ 2>&1
		echo rc=$?; nslookup api.test 2>&1')
	[[ $out == *"NXDOMAIN"*"bad address 'other.test"*"rc=1"* ]] || fail "said: $out" || return 1
	[[ $out == *"Address"*"198.18."* ]] || fail "api.test no longer resolves: $out" || return 1
	[[ $out != *hello* ]] || fail "other.test reached the server" || return 1
	# The agent reports the refusal: the audit log has its line.
	wait_for 5 eval '"$SBX" logs --net $ON | grep -qF "dest=\"other.test\""' ||
		fail "no audit line for other.test" || return 1
	audited other.test deny "no allow pattern can match it (NXDOMAIN)"
}

# An address the list does not name is refused in the guest before its
# handshake: connection refused at once, and the gateway still writes the
# deny line (reported by the agent: wait for it a moment).
test_ip_literal_refused() {
	local out
	out=$(gexec $ON -- sh -c "wget -q -O - http://$NS:8080/ 2>&1; echo rc=\$?")
	[[ $out == *"Connection refused"*"rc=1"* ]] || fail "wget: $out" || return 1
	wait_for 5 eval '"$SBX" logs --net $ON | grep -qF "dest=\"$NS:8080\""' ||
		fail "no audit line for $NS:8080" || return 1
	audited $NS:8080 deny "refused in the guest before connecting"
}

test_loopback_name_refused() {
	refused_in_guest http://loop.test:8080/ loop.test:8080 "loopback"
}

test_private_name_refused() {
	refused_in_guest http://priv.test:80/ priv.test:80 "private address"
}

# Root in the guest: raw addresses through the kernel, its own requests
# straight to the gateway's vsock port, and the rules removed.
test_root_raw_address() {
	local out
	# Not HTTP: no answer, a refusal; what matters is that nothing came
	# back and that the audit log says no.
	out=$(rexec $ON -- sh -c "echo hello | nc $NS 8081" 2>&1)
	[[ $out != *HTTP* && $out != *hello* ]] || fail "nc reached the server: $out" || return 1
	wait_for 5 eval '"$SBX" logs --net $ON | grep -qF "dest=\"$NS:8081\""' ||
		fail "no audit line for $NS:8081" || return 1
	audited $NS:8081 deny "not in the allow list"
}

test_root_talks_to_gateway() {
	local out
	out=$(rexec $ON -- sh -c 'printf "CONNECT '$NS' 8080\n" | vsock-tool connect 2 1025
		printf "CONNECT 10.0.0.1 80\n" | vsock-tool connect 2 1025
		printf "CONNECT 127.0.0.1 22\n" | vsock-tool connect 2 1025' 2>&1)
	[[ $out == *"ERR EACCES $NS:8080 is not in the allow list"*"ERR EACCES 10.0.0.1:80"*"ERR EACCES 127.0.0.1:22"* ]] ||
		fail "said: $out" || return 1
	audited 10.0.0.1:80 deny && audited 127.0.0.1:22 deny
}

test_root_removes_the_rules() {
	local out
	out=$(rexec $ON -- sh -c 'ip rule del pref 100; ip route flush table 99
		wget -q -O - http://'$NS':8080/ 2>&1; echo "rc=$?"')
	[[ $out == *"Network is unreachable"*"rc=1" ]] || fail "said: $out"
}

# UDP other than to the guest's own resolver has no route: it fails at
# once, with or without --allow-net.
test_udp_fails_fast() {
	local out
	out=$(gexec $ON -- sh -c "nslookup api.test $NS 2>&1; echo rc=\$?")
	[[ $out == *"Network is unreachable"*"rc=1" ]] || fail "said: $out"
}

# IPv6 has no route in the guest, with or without --allow-net (the
# guest has no network device; egress routes IPv4 TCP only): a literal
# fails at once with ENETUNREACH, the early refusal for IPv6
# (docs/protocol/egress.md). A route via lo changes nothing (the kernel
# makes an IPv6 route via lo a reject route); should the guest ever get
# a device IPv6 can leave by, this fails: it would need a refuse chain.
test_ipv6_fails_fast() {
	local id out secs
	for id in $OFF $ON; do
		out=$(gexec $id -- sh -c 'start=$(cut -d" " -f1 /proc/uptime)
			nc 2001:db8::5 8080 </dev/null 2>&1; echo "nc=$?"
			wget -q -O - "http://[2001:db8::5]:8080/" 2>&1; echo "wget=$?"
			end=$(cut -d" " -f1 /proc/uptime); awk "BEGIN { print \"secs=\" ($end - $start) }"')
		[[ $out == *"Network is unreachable"*"nc=1"*"Network is unreachable"*"wget=1"* ]] ||
			fail "$id said: $out" || return 1
		secs=${out##*secs=}
		awk "BEGIN { exit !($secs < 3) }" || fail "$id took $secs s: $out" || return 1
	done
}

test_info_shows_list() {
	local out
	out=$("$SBX" info $ON)
	[[ $out == *"allow-net:  api.test:8080 loop.test priv.test (egress gateway pid"* ]] ||
		fail "info: $out" || return 1
	"$SBX" info --json $ON | grep -q '"allow_net":\["api.test:8080","loop.test","priv.test"\]' ||
		fail "json: $("$SBX" info --json $ON)"
}

test_bad_pattern_refused_at_create() {
	local out
	out=$("$SBX" create --name egbad --lifetime 1m --allow-net 'api.test:99999' 2>&1)
	[[ $? == 2 && $out == *"--allow-net api.test:99999: the port is not a number from 1 to 65535"* ]] ||
		fail "said: $out" || return 1
	[ ! -e "$SBX_STATE_DIR/egbad" ] || fail "a state directory was left"
}

# sig_bit STATUS_LINE SIGNAL: is the signal's bit set in a /proc/PID/status
# mask (SigBlk:, SigIgn:)?
sig_bit() { (( 0x${1##*[[:space:]]} >> ($2 - 1) & 1 )); }

# QEMU and the gateway are started with no signal blocked and none of the
# job-control signals ignored, whatever sbx create blocked while it booted
# (SIGINT, SIGTERM, SIGHUP: QEMU kept them blocked) or inherited ignored
# (setup creates $ON with SIGINT and SIGQUIT ignored).
test_daemon_signals() {
	local json qemu gw blk ign
	json=$("$SBX" info --json $ON)
	qemu=$(sed -n 's/.*"qemu_pid":\([0-9]*\).*/\1/p' <<<"$json")
	gw=$(sed -n 's/.*"gateway_pid":\([0-9]*\).*/\1/p' <<<"$json")
	[ -n "$qemu" ] && [ -n "$gw" ] || fail "pids from info: $json" || return 1
	blk=$(grep '^SigBlk:' /proc/$qemu/status) && ign=$(grep '^SigIgn:' /proc/$qemu/status) ||
		return 1
	for s in 1 2 15; do
		! sig_bit "$blk" $s || fail "QEMU has signal $s blocked: $blk" || return 1
	done
	! sig_bit "$ign" 3 || fail "QEMU ignores SIGQUIT: $ign" || return 1
	ign=$(grep '^SigIgn:' /proc/$gw/status) || return 1
	! sig_bit "$ign" 2 && ! sig_bit "$ign" 3 || fail "the gateway ignores SIGINT or SIGQUIT: $ign"
}

test_kill_stops_gateway() {
	local pid
	pid=$("$SBX" info --json $ON | sed -n 's/.*"gateway_pid":\([0-9]*\).*/\1/p')
	[ -n "$pid" ] && kill -0 "$pid" || fail "no gateway pid" || return 1
	"$SBX" kill $ON || return 1
	wait_for 5 sh -c "! kill -0 $pid 2>/dev/null" || fail "the gateway outlived the sandbox"
}

t "setup: namespace, servers, two sandboxes" setup || exit 1
t "without --allow-net: connections fail at once" test_off_fails_fast
t "without --allow-net: no nameserver, no route, no gateway" test_off_no_nameserver_no_gateway
t "with api.test:8080: an HTTP GET reaches the server" test_http_get
t "names resolve to synthetic addresses in the guest" test_names_resolve_synthetic
t "api.test:8081 refused (a server listens there): HTTP 403 naming the reason" test_other_port_refused
t "other.test: no pattern can match it, the guest's resolver says NXDOMAIN, audited" test_other_name_refused
t "an unlisted IP literal refused at once in the guest (connection refused), audited" test_ip_literal_refused
t "a listed name resolving to loopback refused" test_loopback_name_refused
t "a listed name resolving to RFC 1918 refused" test_private_name_refused
t "root: a raw address through the kernel refused" test_root_raw_address
t "root: its own requests to the gateway port refused" test_root_talks_to_gateway
t "root: removing the route leaves no way out" test_root_removes_the_rules
t "UDP (DNS to an outside server) fails at once" test_udp_fails_fast
t "IPv6 literals fail at once (no route), with or without --allow-net" test_ipv6_fails_fast
t "sbx info shows the allow list" test_info_shows_list
t "an invalid pattern is refused at create" test_bad_pattern_refused_at_create
t "QEMU and the gateway start with no signal blocked or inherited ignored" test_daemon_signals
t "sbx kill stops the gateway" test_kill_stops_gateway
