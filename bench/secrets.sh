#!/bin/bash
# bench/secrets.sh: HTTPS through the gateway that substitutes secrets
# (TLS terminated and re-made, request heads parsed and rewritten, small
# JSON bodies held and rewritten) against
# the same client through the plain gateway (TLS end to end, relayed with
# splice), as markdown table rows
#   | measurement | path | N | median | range | ratio |
# Host side only (no VM): `sbx gateway --secret` on its Unix socket, one
# Python client (ssl module) driving both paths, alternated pair by pair
# in one run; the server is tests/integration/secrets_peer.py in a
# network namespace (tests/integration/secrets_net.sh), the same for both.
# Ratios are substituting/plain per pair (median, min-max).
# Environment: SECRETS_BYTES (64 MiB), SECRETS_RUNS (5), SECRETS_CONN_N
# (200), SECRETS_REQ_N (500). Needs root (network namespace).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
B=${SBX_BUILD:-build}
BYTES=${SECRETS_BYTES:-67108864}
RUNS=${SECRETS_RUNS:-5}
CONN_N=${SECRETS_CONN_N:-200}
REQ_N=${SECRETS_REQ_N:-500}
PY=/usr/bin/python3
T_TMP=$(mktemp -d /tmp/sbx-secbench.XXXXXX)
T_CLEANUP=()
on_exit() { T_CLEANUP+=("$*"); }
cleanup() {
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do eval "${T_CLEANUP[i]}" >/dev/null 2>&1; done
	rm -rf "$T_TMP"
}
trap cleanup EXIT
say() { echo "bench/secrets.sh: $*" >&2; }
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge "$deadline" ] && return 1
		sleep 0.05
	done
}
. tests/integration/secrets_net.sh

[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
secrets_net_up sbxsb$$ 198.51.100.137 198.51.100.138 198.51.100.139 || { say "no test network"; exit 1; }
SOCK=$T_TMP/g.sock
SBX_EGRESS_CA_FILE=$SECRETS_CA "$B/sbx" gateway --listen "$SOCK" --audit "$T_TMP/egress.log" \
	--allow api.test --allow plain.test --resolve api.test=$SECRETS_GOOD \
	--resolve plain.test=$SECRETS_GOOD --secret "KEY=api.test:sk-bench-value" \
	--ca-out "$T_TMP/sbxca.pem" >"$T_TMP/standins" 2>"$T_TMP/gateway.err" &
on_exit "kill $!"
wait_for 5 test -S "$SOCK" || { say "the gateway did not start: $(cat "$T_TMP/gateway.err")"; exit 1; }
STANDIN=$(sed -n 's/^KEY=//p' "$T_TMP/standins")

cat >"$T_TMP/drv.py" <<'EOF2'
import socket, ssl, statistics, sys, time
sock, standin, sbxca, testca = sys.argv[1:5]
nbytes, runs, conns, reqs = (int(x) for x in sys.argv[5:9])
ctx = {True: ssl.create_default_context(cafile=sbxca), False: ssl.create_default_context(cafile=testca)}
host = {True: "api.test", False: "plain.test"}

def open_conn(subst):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(b"CONNECT %s 443\n" % host[subst].encode())
    line = s.recv(256)
    if not line.startswith(b"OK "):
        raise SystemExit("gateway said %r" % line)
    return ctx[subst].wrap_socket(s, server_hostname=host[subst])

def request(t, subst, path, body=b"", ctype=None):
    h = "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n%sContent-Length: %d\r\n\r\n" % (
        path, host[subst], standin, "Content-Type: %s\r\n" % ctype if ctype else "", len(body))
    t.sendall(h.encode() + body if len(body) < 65536 else h.encode())
    if len(body) >= 65536:
        mv = memoryview(body)
        for i in range(0, len(body), 1 << 20):
            t.sendall(mv[i:i + (1 << 20)])
    f = t.makefile("rb")
    status = f.readline()
    n = 0
    while True:
        l = f.readline()
        if l.lower().startswith(b"content-length:"):
            n = int(l.split(b":")[1])
        if l in (b"\r\n", b""):
            break
    left = n
    while left:
        d = f.read(min(left, 1 << 20))
        if not d:
            break
        left -= len(d)
    assert status.startswith(b"HTTP/1.1 200"), status
    return n

def upload(subst):
    body = bytes(nbytes)
    t0 = time.perf_counter()
    t = open_conn(subst)
    request(t, subst, "/sink", body)
    dt = time.perf_counter() - t0
    t.close()
    return nbytes / dt / 1e6

def download(subst):
    t0 = time.perf_counter()
    t = open_conn(subst)
    request(t, subst, "/big/%d" % nbytes)
    dt = time.perf_counter() - t0
    t.close()
    return nbytes / dt / 1e6

def new_conn(subst):
    t0 = time.perf_counter()
    t = open_conn(subst)
    request(t, subst, "/sink")
    dt = time.perf_counter() - t0
    t.close()
    return dt * 1e3

def keepalive(subst, t=[None, None]):
    if t[subst] is None:
        t[subst] = open_conn(subst)
    t0 = time.perf_counter()
    request(t[subst], subst, "/sink")
    return (time.perf_counter() - t0) * 1e6

JSON = b'{"key": "%s", "pad": "%s"}' % (standin.encode(), b"x" * (16384 - 22 - len(standin)))

def json_body(subst, t=[None, None]):
    if t[subst] is None:
        t[subst] = open_conn(subst)
    t0 = time.perf_counter()
    request(t[subst], subst, "/sink", JSON, "application/json")
    return (time.perf_counter() - t0) * 1e6

def row(what, unit, sub, plain, fmt):
    r = [a / b for a, b in zip(sub, plain)]
    for side, v in (("substituting gateway", sub), ("plain gateway", plain)):
        print("| %s | %s | %d | %s %s | %s-%s | %s |" % (what, side, len(v), fmt % statistics.median(v), unit,
              fmt % min(v), fmt % max(v), "%.2f (%.2f-%.2f)" % (statistics.median(r), min(r), max(r)) if side.startswith("sub") else "1"))

for fn, n, what, unit, fmt in ((upload, runs, "HTTPS upload, %d MiB body" % (nbytes >> 20), "MB/s", "%.0f"),
                               (download, runs, "HTTPS download, %d MiB" % (nbytes >> 20), "MB/s", "%.0f"),
                               (new_conn, conns, "new connection + TLS + 1 request", "ms", "%.2f"),
                               (keepalive, reqs, "1 request on a kept-alive connection", "µs", "%.0f"),
                               (json_body, reqs, "1 request, 16 KiB JSON body with the stand-in, kept-alive",
                                "µs", "%.0f")):
    sub, plain = [], []
    for i in range(n):
        for s in ((True, False) if i % 2 == 0 else (False, True)):
            (sub if s else plain).append(fn(s))
    row(what, unit, sub, plain, fmt)
EOF2
say "HTTPS through the substituting and the plain gateway"
"$PY" "$T_TMP/drv.py" "$SOCK" "$STANDIN" "$T_TMP/sbxca.pem" "$SECRETS_CA" "$BYTES" "$RUNS" \
	"$CONN_N" "$REQ_N" || exit 1
n=$(grep -c 'verdict=secret' "$T_TMP/egress.log")
say "$n substitutions audited"
