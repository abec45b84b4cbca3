# Sourced by the egress suites and bench/egress.sh (not a suite itself):
# "the internet" for tests is a network namespace reached over a veth
# pair, with documentation addresses (RFC 5737), which the gateway treats
# as public. Nothing here sends a packet anywhere else. The suites use
# 198.51.100/24 only: on the CI machines the package archive's proxy
# answers at a 203.0.113 address, and a test route over that range cut
# apt off (a leftover one failed CI once).
#   egress_net_up NS HOST_ADDR NS_ADDR   (both in one /30)
# then, in the namespace: egress_httpd NS_ADDR PORT DIR, egress_hash_sink
# NS_ADDR PORT (answers the sha256 of what it got, after EOF).
egress_net_up() {
	local ns=$1 host=$2 addr=$3
	ip netns del "$ns" 2>/dev/null
	ip link del "${ns}h" 2>/dev/null
	ip netns add "$ns" || return 1
	on_exit "ip netns del $ns"
	ip link add "${ns}h" type veth peer name "${ns}n" || return 1
	on_exit "ip link del ${ns}h"
	ip link set "${ns}n" netns "$ns" &&
		ip addr add "$host/30" dev "${ns}h" && ip link set "${ns}h" up &&
		ip -n "$ns" addr add "$addr/30" dev "${ns}n" && ip -n "$ns" link set "${ns}n" up &&
		ip -n "$ns" link set lo up
	EGRESS_NS=$ns
}

egress_httpd() { # ADDR PORT DIR
	ip netns exec "$EGRESS_NS" busybox httpd -f -p "$1:$2" -h "$3" &
	on_exit "kill $!"
}

egress_hash_sink() { # ADDR PORT
	ip netns exec "$EGRESS_NS" socat -b 262144 -t 30 \
		"TCP-LISTEN:$2,bind=$1,reuseaddr,fork,backlog=256" SYSTEM:'sha256sum | cut -c1-64' &
	on_exit "kill $!"
}
