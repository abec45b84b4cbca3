#!/bin/bash
# System test for sbx-vsockd: boots the real guest kernel under QEMU (microvm,
# TCG) with sbx-vsockd as its vsock device and checks what a user relies on.
# The guest runs a test /init appended to the image (so sbx-init is not
# needed); vsock-tool is the peer on both sides. Prints TAP.
set -u
cd "$(dirname "$0")/../.."
B=${SBX_IMAGE_BUILD:-build}
T=$B/vsock-tool
MEM=512M
CID=3
BIG=$((64 << 20))

n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { # name, then a command: ok when it succeeds
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
diag() { echo "# $*"; }

echo "1..12"
for f in vmlinuz initramfs.cpio.lz4 sbx-vsockd vsock-tool mkcpio tsc-khz; do
	if [ ! -e "$B/$f" ]; then
		echo "Bail out! $B/$f is missing (make build/sbx-vsockd image)"
		exit 1
	fi
done

W=$(mktemp -d /tmp/sbx-vsockd-test.XXXXXX)
VSOCKD_PID= QEMU_PID= SOCAT_PIDS=
cleanup() {
	for p in $SOCAT_PIDS $QEMU_PID $VSOCKD_PID; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

# ---- the guest: a test /init over the real image ---------------------------
cat > "$W/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
while read -r m; do insmod "$m" || echo "insmod $m failed"; done < /etc/sbx/modules
vsock-tool listen 1024 &
vsock-tool exec 1025 &
echo "GUEST ready"
while :; do sleep 1000; done
EOF
echo "file init $W/init 0755 0 0" | "$B/mkcpio" > "$W/init.cpio"
# ...and a per-sandbox config archive, as the launcher writes it
printf 'hostname=test\nsecret=s3cr3t\n' > "$W/config"
"$B/mkcpio" --config "$W/config" > "$W/config.cpio"
# (the image uncompressed first: nothing that follows an lz4 stream is found)
lz4 -dc "$B/initramfs.cpio.lz4" > "$W/image.cpio"
cat "$W/image.cpio" "$W/init.cpio" "$W/config.cpio" > "$W/initrd"

# ---- boot: vsockd first (--ready-fd says when it listens), then QEMU -------
mkfifo "$W/ready"
"$B/sbx-vsockd" --socket "$W/vu.sock" --uds "$W/v.sock" --cid $CID --ready-fd 3 \
	3>"$W/ready" 2>"$W/vsockd.log" &
VSOCKD_PID=$!
if ! timeout 10 head -c 1 "$W/ready" >/dev/null; then
	echo "Bail out! sbx-vsockd did not get ready"
	exit 1
fi
TSC=$("$B/tsc-khz")
qemu-system-x86_64 -M microvm,memory-backend=mem -cpu max -m $MEM -smp 1 \
	-object memory-backend-memfd,id=mem,size=$MEM,share=on \
	-nodefaults -no-user-config -nographic -no-reboot \
	-serial "file:$W/console.log" \
	-chardev socket,id=vu,path="$W/vu.sock" -device vhost-user-vsock-device,chardev=vu \
	-kernel "$B/vmlinuz" -initrd "$W/initrd" \
	-append "console=ttyS0 quiet panic=-1 tsc_early_khz=$TSC" 2>"$W/qemu.log" &
QEMU_PID=$!
for _ in $(seq 300); do
	grep -q "GUEST ready" "$W/console.log" 2>/dev/null && break
	sleep 0.2
done
if ! grep -q "GUEST ready" "$W/console.log" 2>/dev/null; then
	echo "Bail out! the guest did not boot"
	sed 's/^/# /' "$W/console.log" "$W/qemu.log" "$W/vsockd.log"
	exit 1
fi

# Runs a shell command line in the guest, through vsockd itself.
guest() { echo "$1" | timeout "${2:-60}" "$T" hybrid "$W/v.sock" 1025; }
# the guest's listeners start in the background: wait until they answer
for _ in $(seq 50); do
	[ "$(guest 'echo up' 5 2>/dev/null)" = up ] && break
	sleep 0.1
done

check "the appended config archive lands in /etc/sbx/config, mode 0600" \
	test "$(guest 'stat -c %a:%u /etc/sbx/config; cat /etc/sbx/config')" = \
	"$(printf '600:0\nhostname=test\nsecret=s3cr3t')"

# ---- host -> guest ----------------------------------------------------------
check "host connects to a listening guest port" \
	test "$(echo hello | timeout 10 "$T" hybrid "$W/v.sock" 1024)" = hello

start=$(date +%s%N)
out=$(timeout 10 "$T" hybrid "$W/v.sock" 1999 </dev/null 2>&1)
rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
check "connecting to a port nobody listens on fails cleanly (rc $rc, ${ms} ms)" \
	test $rc = 1 -a $ms -lt 5000 -a -n "$out"

# ---- guest -> host ------------------------------------------------------------
socat UNIX-LISTEN:"$W/v.sock_7000",fork EXEC:cat 2>/dev/null &
SOCAT_PIDS="$SOCAT_PIDS $!"
sleep 0.2
check "guest connects to CID 2 port 7000, relayed to PATH_7000" \
	test "$(guest 'echo from-guest | vsock-tool connect 2 7000')" = from-guest
check "guest connection to a port without a host listener is reset" \
	test "$(guest 'vsock-tool connect 2 7001 </dev/null 2>/dev/null; echo rc=$?')" = rc=1

# ---- large transfers, both ways, hashed ---------------------------------
head -c $BIG /dev/urandom > "$W/big"
want=$(sha256sum < "$W/big" | cut -d' ' -f1)
guest 'vsock-tool accept 5000 > /tmp/big; sha256sum < /tmp/big' 120 > "$W/h2g.sum" &
gpid=$!
sleep 0.5
start=$(date +%s%N)
timeout 120 "$T" hybrid "$W/v.sock" 5000 < "$W/big" > /dev/null
wait $gpid
ms=$((($(date +%s%N) - start) / 1000000))
check "host -> guest $((BIG >> 20)) MiB arrives intact (sha256, ${ms} ms)" \
	test "$(cut -d' ' -f1 "$W/h2g.sum")" = "$want"

socat -u UNIX-LISTEN:"$W/v.sock_7002" CREATE:"$W/back" 2>/dev/null &
spid=$!
SOCAT_PIDS="$SOCAT_PIDS $spid"
sleep 0.2
start=$(date +%s%N)
guest 'vsock-tool connect 2 7002 < /tmp/big' 120 >/dev/null
timeout 30 tail --pid=$spid -f /dev/null
ms=$((($(date +%s%N) - start) / 1000000))
check "guest -> host $((BIG >> 20)) MiB arrives intact (sha256, ${ms} ms)" \
	test "$(sha256sum < "$W/back" | cut -d' ' -f1)" = "$want"

# ---- many connections at once ---------------------------------------------
timeout 120 "$T" stress "$W/v.sock" 1024 1000 10000 2>"$W/stress.out"
rc=$?
diag "$(cat "$W/stress.out")"
check "1000 concurrent connections, 10000 bytes echoed on each" test $rc = 0

# ---- throughput (diagnostic figures) -----------------------------------
guest 'vsock-tool sink 5001' 60 > "$W/sink.out" 2>&1 &
gpid=$!
sleep 0.5
head -c $((256 << 20)) /dev/zero | timeout 60 "$T" hybrid "$W/v.sock" 5001 >/dev/null
wait $gpid
diag "host->guest: $(cat "$W/sink.out")"
guest "vsock-tool source 5002 $((256 << 20))" 60 > "$W/source.out" 2>&1 &
gpid=$!
sleep 0.5
got=$(timeout 60 "$T" hybrid "$W/v.sock" 5002 </dev/null | wc -c)
wait $gpid
diag "guest->host: $(cat "$W/source.out")"
check "guest -> host 256 MiB stream complete" test "$got" = $((256 << 20))

# ---- a host client that vanishes mid-stream -----------------------------
guest 'vsock-tool sink 5003 2>&1; echo sink-done' 30 > "$W/vanish.out" &
gpid=$!
sleep 0.5
head -c $((4 << 30)) /dev/zero | timeout 1 "$T" hybrid "$W/v.sock" 5003 >/dev/null 2>&1
wait $gpid
check "a host client that vanishes mid-stream ends the guest's connection" \
	grep -q sink-done "$W/vanish.out"

# ---- the guest driver resets: connections end, new ones work -----------
drv=/sys/bus/virtio/drivers/vmw_vsock_virtio_transport
guest "sleep 1; d=\$(ls $drv | grep virtio); echo \$d > $drv/unbind; sleep 1; echo \$d > $drv/bind" 30 &
gpid=$!
got=$(head -c $((1 << 30)) /dev/zero | timeout 30 "$T" hybrid "$W/v.sock" 1024 | wc -c)
wait $gpid
sleep 0.5
check "a driver reset ends open connections ($got bytes echoed) and new ones work" \
	test "$got" -lt $((1 << 30)) -a "$(echo again | timeout 10 "$T" hybrid "$W/v.sock" 1024)" = again

# ---- QEMU exits: vsockd exits 0 and removes its sockets -----------------
guest 'poweroff -f' 10 >/dev/null 2>&1
timeout 30 tail --pid=$QEMU_PID -f /dev/null
wait $QEMU_PID
qrc=$?
QEMU_PID=
timeout 10 tail --pid=$VSOCKD_PID -f /dev/null
wait $VSOCKD_PID
vrc=$?
VSOCKD_PID=
check "QEMU exit (rc $qrc): sbx-vsockd exits 0 (rc $vrc) and removes its sockets" \
	test $qrc = 0 -a $vrc = 0 -a ! -e "$W/vu.sock" -a ! -e "$W/v.sock"

if [ $fails -ne 0 ]; then
	sed 's/^/# vsockd: /' "$W/vsockd.log"
	tail -20 "$W/console.log" | sed 's/^/# console: /'
fi
echo "# $((n - fails)) passed, $fails failed"
[ $fails -eq 0 ]
