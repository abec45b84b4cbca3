#!/bin/bash
# bench/net.sh ADDR: port forwarding figures as markdown table rows
#   | measurement | side | N | median | range | ratio |
# for an agent at ADDR (development mode: unix:PATH). A loopback TCP
# service is measured directly and through relays, alternated in one run
# (../shared/BENCH.md): sbx FORWARD through the agent (libsbx in-process),
# socat, and ssh -L to a throwaway sshd on a loopback port (temporary keys,
# a clean HOME, curve25519-sha256, OpenSSH's default cipher). Ratios are
# relay/direct, pair by pair: for throughput higher is better (goal for
# sbx: >= 0.8), for latency lower.
#
# Environment: NET_BYTES (default 1 GiB), NET_RUNS (5), NET_RR_N (2000),
# NET_CONN_N (500).
set -eu
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
ADDR=${1:?usage: bench/net.sh ADDR}
BYTES=${NET_BYTES:-1073741824}
RUNS=${NET_RUNS:-5}
RR_N=${NET_RR_N:-2000}
CONN_N=${NET_CONN_N:-500}
TMP=$(mktemp -d /tmp/sbx-netbench.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

say() { echo "bench/net.sh: $*" >&2; }
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_listen() { # PORT WHAT
	for _ in $(seq 200); do listening "$1" && return 0; sleep 0.05; done
	say "$2 did not start"
	exit 1
}

# The driver is a separate program, built here from its own source and
# libsbx (it is not part of `make`).
DRV=$B/fwdbench
cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -I. -o "$DRV" bench/net/fwdbench.c \
	bench/stats.c "$B/host/libsbx.a" -lsodium

"$DRV" serve >"$TMP/src" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$TMP/src" ] && break; sleep 0.05; done
SRC=$(cat "$TMP/src")

# socat, with a large buffer (its default makes it 2x slower).
SOCAT_PORT=$("$DRV" freeport)
socat -b 262144 "TCP-LISTEN:$SOCAT_PORT,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$SRC" &
PIDS+=($!)
wait_listen "$SOCAT_PORT" socat

# A throwaway sshd and ssh -L; -N runs no shell on the server side.
SSHD_PORT=$("$DRV" freeport)
FWD_PORT=$("$DRV" freeport)
ssh-keygen -q -t ed25519 -N '' -f "$TMP/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/client_key"
cp "$TMP/client_key.pub" "$TMP/authorized_keys"
mkdir -p /run/sshd # sshd's privilege separation directory
/usr/sbin/sshd -D -e -f /dev/null -p "$SSHD_PORT" -o ListenAddress=127.0.0.1 \
	-h "$TMP/host_key" -o AuthorizedKeysFile="$TMP/authorized_keys" -o StrictModes=no \
	-o UsePAM=no -o PidFile=none -o KexAlgorithms=curve25519-sha256 2>"$TMP/sshd.log" &
PIDS+=($!)
wait_listen "$SSHD_PORT" sshd
HOME=$TMP ssh -F none -N -o BatchMode=yes -o ExitOnForwardFailure=yes \
	-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
	-o KexAlgorithms=curve25519-sha256 -i "$TMP/client_key" -p "$SSHD_PORT" \
	-L "127.0.0.1:$FWD_PORT:127.0.0.1:$SRC" root@127.0.0.1 2>"$TMP/ssh.log" &
PIDS+=($!)
wait_listen "$FWD_PORT" "ssh -L"
CIPHER=$(HOME=$TMP ssh -G -F none 127.0.0.1 2>/dev/null </dev/null | awk '$1 == "ciphers" { split($2, c, ","); print c[1] }')

SIDES=("socat -b 262144=$SOCAT_PORT" "ssh -L ($CIPHER)=$FWD_PORT")
"$DRV" tput "$ADDR" "$SRC" "$BYTES" "$RUNS" "${SIDES[@]}"
"$DRV" rr "$ADDR" "$SRC" "$RR_N" "${SIDES[@]}"
"$DRV" conn "$ADDR" "$SRC" "$CONN_N" "${SIDES[@]}"
