#!/bin/bash
# bench/egress.sh: egress figures as markdown table rows
#   | measurement | side | N | median | range | ratio |
# Servers run in a network namespace made here (tests/integration/
# egress_net.sh). Two sides, each against the same client connecting
# directly from the host, alternated pair by pair in one run
# (../shared/BENCH.md); ratios are gateway/direct per pair (median, and
# min-max): for throughput higher is better, for latency lower.
#   host: the gateway alone (`sbx gateway` on its Unix socket), driven
#         in-process by a Python client; direct = the same client over TCP.
#   vm:   end to end from a sandbox under TCG (busybox wget in the guest
#         through the DNS stub, the nft redirect, the proxy, vsock,
#         sbx-vsockd and the gateway); direct = the same busybox wget on
#         the host.
# Environment: EGRESS_BYTES (256 MiB), EGRESS_RUNS (5), EGRESS_CONN_N (500),
# EGRESS_VM_BYTES (32 MiB), EGRESS_VM_RUNS (3), EGRESS_VM_CONN_N (20).
# Needs root (network namespace).
set -u
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
BYTES=${EGRESS_BYTES:-268435456}
RUNS=${EGRESS_RUNS:-5}
CONN_N=${EGRESS_CONN_N:-500}
VM_BYTES=${EGRESS_VM_BYTES:-33554432}
VM_RUNS=${EGRESS_VM_RUNS:-3}
VM_CONN_N=${EGRESS_VM_CONN_N:-20}
HOST=198.51.100.129
NS=198.51.100.130
PY=/usr/bin/python3
T_TMP=$(mktemp -d /tmp/sbx-egbench.XXXXXX)
T_CLEANUP=()
on_exit() { T_CLEANUP+=("$*"); }
cleanup() {
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${T_CLEANUP[i]}" >/dev/null 2>&1; done
	rm -rf "$T_TMP"
}
trap cleanup EXIT
say() { echo "bench/egress.sh: $*" >&2; }
. tests/integration/egress_net.sh

[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
egress_net_up sbxbe$$ $HOST $NS || exit 1
# One Python process in the namespace: a sink on 9001 that answers the
# byte count after EOF, an echo server on 9002 (no fork per connection,
# which would hide the relay's own cost).
cat >"$T_TMP/srv.py" <<'EOF'
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in (9001, 9002):
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((sys.argv[1], port))
    l.listen(1024)
    l.setblocking(False)
    sel.register(l, selectors.EVENT_READ, ("listen", port))
count = {}
while True:
    for key, _ in sel.select():
        kind, port = key.data
        if kind == "listen":
            c, _ = key.fileobj.accept()
            c.setblocking(False)
            count[c] = 0
            sel.register(c, selectors.EVENT_READ, ("conn", port))
            continue
        c = key.fileobj
        try:
            d = c.recv(1 << 20)
        except BlockingIOError:
            continue
        except OSError:
            d = b""
        if d and port == 9002:
            c.sendall(d)
        elif d:
            count[c] += len(d)
        else:
            if port == 9001:
                c.setblocking(True)
                c.sendall(b"%d" % count[c])
            sel.unregister(c)
            del count[c]
            c.close()
EOF
ip netns exec "$EGRESS_NS" "$PY" "$T_TMP/srv.py" $NS &
on_exit "kill $!"
mkdir -p "$T_TMP/www"
head -c "$VM_BYTES" /dev/zero >"$T_TMP/www/big"
echo ok >"$T_TMP/www/small"
egress_httpd $NS 8080 "$T_TMP/www"
SOCK=$T_TMP/g.sock
"$B/sbx" gateway --listen "$SOCK" --audit "$T_TMP/egress.log" --allow bench.test \
	--resolve bench.test=$NS 2>"$T_TMP/gateway.err" &
on_exit "kill $!"
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
sleep 0.3

cat >"$T_TMP/drv.py" <<'EOF'
# The host-side driver: gateway and direct alternated, in one process.
import socket, statistics, sys, time
sock, ns, nbytes, runs, conns = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def open_conn(via_gw, port):
    if via_gw:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        s.sendall(b"CONNECT bench.test %d\n" % port)
        # Nothing follows the reply until we send: one read takes it.
        line = s.recv(256)
        if not line.endswith(b"\n"):
            raise SystemExit("gateway reply: %r" % line)
        if not line.startswith(b"OK "):
            raise SystemExit("gateway said %r" % line)
    else:
        s = socket.create_connection((ns, port))
    return s

def throughput(via_gw):
    buf = memoryview(bytes(1 << 20))
    t = time.perf_counter()
    s = open_conn(via_gw, 9001)
    left = nbytes
    while left:
        n = min(left, len(buf))
        s.sendall(buf[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        c = s.recv(64)
        if not c:
            break
        got += c
    dt = time.perf_counter() - t
    s.close()
    assert int(got) == nbytes, got
    return nbytes / dt / 1e6

def latency(via_gw):
    t = time.perf_counter()
    s = open_conn(via_gw, 9002)
    s.sendall(b"x")
    assert s.recv(1) == b"x"
    dt = time.perf_counter() - t
    s.close()
    return dt * 1e6

def row(what, unit, gw, direct, fmt):
    r = [g / d for g, d in zip(gw, direct)]
    for side, v in (("gateway", gw), ("direct", direct)):
        print("| %s | host %s | %d | %s %s | %s-%s | %s |" % (what, side, len(v), fmt % statistics.median(v), unit,
              fmt % min(v), fmt % max(v), "%.2f (%.2f-%.2f)" % (statistics.median(r), min(r), max(r)) if side == "gateway" else "1"))

for fn, n, what, unit, fmt in ((throughput, runs, "throughput, %d MiB up" % (nbytes >> 20), "MB/s", "%.0f"),
                               (latency, conns, "connect + 1-byte echo", "µs", "%.0f")):
    gw, direct = [], []
    for i in range(n):
        for via in ((True, False) if i % 2 == 0 else (False, True)):
            (gw if via else direct).append(fn(via))
    row(what, unit, gw, direct, fmt)
EOF
say "host side: the gateway alone"
"$PY" "$T_TMP/drv.py" "$SOCK" $NS "$BYTES" "$RUNS" "$CONN_N" || exit 1

# ---- end to end from a VM ----
export SBX_STATE_DIR=$T_TMP/state
ID=egbench$$
say "vm side: booting a sandbox"
"$B/sbx" create --name $ID --lifetime 15m --allow-net bench.test:8080 \
	--resolve bench.test=$NS >/dev/null 2>"$T_TMP/create.err" || {
	say "create failed: $(cat "$T_TMP/create.err")"
	exit 1
}
on_exit "$B/sbx kill $ID"
now_us() { echo $(($(date +%s%N) / 1000)); }
# One guest measurement, in microseconds (the guest's /proc/uptime: 10 ms
# steps; busybox date has no %N there).
guest_us() { # URL COUNT
	"$B/sbx" exec $ID -- sh -c 's=$(cut -d" " -f1 /proc/uptime); i=0; while [ $i -lt '"$2"' ]; do
		wget -q -O /dev/null '"$1"' || exit 1; i=$((i+1)); done; e=$(cut -d" " -f1 /proc/uptime)
		echo $(( (${e%.*}${e#*.} - ${s%.*}${s#*.}) * 10000 ))'
}
host_us() { # URL COUNT
	local s e i
	s=$(now_us)
	for ((i = 0; i < $2; i++)); do busybox wget -q -O /dev/null "$1" || return 1; done
	e=$(now_us)
	echo $((e - s))
}
vm_row() { # WHAT UNIT VALUES_GW VALUES_DIRECT (space-separated)
	"$PY" - "$@" <<'EOF'
import statistics, sys
what, unit, gw, d = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
r = [a / b for a, b in zip(gw, d)]
print("| %s | vm gateway (TCG) | %d | %.1f %s | %.1f-%.1f | %.3f (%.3f-%.3f) |" % (what, len(gw), statistics.median(gw), unit, min(gw), max(gw), statistics.median(r), min(r), max(r)))
print("| %s | host direct | %d | %.1f %s | %.1f-%.1f | 1 |" % (what, len(d), statistics.median(d), unit, min(d), max(d)))
EOF
}
say "vm side: throughput"
gw=() direct=()
for i in $(seq "$VM_RUNS"); do
	us=$(guest_us "http://bench.test:8080/big" 1) || { say "guest wget failed"; exit 1; }
	gw+=("$(awk "BEGIN { printf \"%.1f\", $VM_BYTES / $us }")")
	us=$(host_us "http://$NS:8080/big" 1) || exit 1
	direct+=("$(awk "BEGIN { printf \"%.1f\", $VM_BYTES / $us }")")
done
vm_row "HTTP GET of $((VM_BYTES >> 20)) MiB (busybox wget)" MB/s "${gw[*]}" "${direct[*]}"
say "vm side: connect latency"
gw=() direct=()
for i in $(seq 5); do
	us=$(guest_us "http://bench.test:8080/small" "$VM_CONN_N") || exit 1
	gw+=("$(awk "BEGIN { printf \"%.1f\", $us / $VM_CONN_N / 1000 }")")
	us=$(host_us "http://$NS:8080/small" "$VM_CONN_N") || exit 1
	direct+=("$(awk "BEGIN { printf \"%.1f\", $us / $VM_CONN_N / 1000 }")")
done
vm_row "HTTP GET of 3 bytes, mean of $VM_CONN_N wget runs" ms "${gw[*]}" "${direct[*]}"
