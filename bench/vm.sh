#!/bin/bash
# bench/vm.sh: sbx in a real VM under QEMU (TCG here), as markdown for
# bench/results.md. Boots its own sandboxes (state in a temp dir) and
# leaves nothing running.
#
# 1. Boot: `sbx create` until the agent is ready, against QEMU booting the
#    power-off-at-once baseline image (build/baseline-initramfs.cpio.gz)
#    with the same kernel and the same command line shape (microvm, the
#    same memory backend and vhost-user vsock device with its sbx-vsockd,
#    TCG -cpu max without ERMS/FSRM, tsc_early_khz), alternated; and the guest's own
#    timings from the READY frame (`sbx info --json`).
# 2. Exec round trip of /bin/true over real vsock (hybrid address through
#    sbx-vsockd, host client in-process) against the same client (static
#    musl sbx-bench, copied into the guest) run inside the guest against
#    a development-mode sbx-init there on a Unix socket (the same server
#    code; the VM's own agent listens on vsock only), and the bare
#    transport (connect + 64-byte echo through sbx-vsockd); in blocks,
#    alternated (the two sides cannot share one process).
# 3. sbx-vsockd throughput both ways: sbx exec streaming VM_BYTES against
#    the same command on a raw vsock stream (vsock-tool exec in the guest,
#    vsock-tool hybrid on the host), the same command's output relayed
#    through a pipe by dd onto the raw stream (the floor of any relay, the
#    agent's included), \`sbx exec --direct-stdout\` (the command writes
#    into a vsock connection of its own, no relay), and the same bytes
#    through a pipe inside the guest (what TCG allows at all).
# The agent's own memory is bench/footprint.sh's (the same static binary,
# measured on the host): in a VM no workload can see it, since every
# command runs in the workloads' PID namespace (init/workns.c).
#
# Environment: VM_BOOTS (5), VM_EXEC_N (1000), VM_BLOCKS (10),
# VM_BYTES (256M), VM_RUNS (3).
set -eu
cd "$(dirname "$0")/.."
B=$(realpath "${SBX_BUILD:-build}")
SBX=$B/sbx
VM_BOOTS=${VM_BOOTS:-5}
VM_EXEC_N=${VM_EXEC_N:-1000}
VM_BLOCKS=${VM_BLOCKS:-10}
VM_BYTES=${VM_BYTES:-256M}
VM_RUNS=${VM_RUNS:-3}
KV=${BENCH_KV:-/dev/null}
TMP=$(mktemp -d /tmp/sbx-vm.XXXXXX)
export SBX_STATE_DIR=$TMP/state
# The minimal image: its figures are the agent's, and the guest side runs
# vsock-tool, which only the initramfs has (bench/images.sh boots Debian).
export SBX_IMAGE=minimal
BASE_PIDS=()
cleanup() {
	local d
	for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")" >/dev/null 2>&1; done
	for p in "${BASE_PIDS[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

say() { echo "bench/vm.sh: $*" >&2; }
now_ns() { date +%s%N; }
# statistics of a column of numbers: "n median p99 min max"
stats() { sort -g | awk '{ v[NR] = $1 } END {
	if (!NR) { print "0 0 0 0 0"; exit }
	for (i = 1; i <= NR; i++) s += v[i]
	printf "%d %s %s %s %s %.1f\n", NR, v[int(0.5 * (NR - 1) + 0.5) + 1],
		v[int(0.99 * (NR - 1) + 0.5) + 1], v[1], v[NR], s / NR }'; }
fmt_ms() { awk -v v="$1" 'BEGIN { printf(v >= 100 ? "%.0f ms" : "%.1f ms", v) }'; }
fmt_us() { awk -v v="$1" 'BEGIN { printf(v >= 10000 ? "%.1f ms" : "%.0f µs", v >= 10000 ? v / 1000 : v) }'; }
json_num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }
json_str() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }

KHZ=$("$B/tsc-khz" 2>/dev/null || true)
MEM=1024

# ---- 1. boot -------------------------------------------------------------------
# The baseline: QEMU with sbx's command line shape and the baseline image;
# QEMU start -> QEMU exit (the guest powers off at once).
boot_baseline() { # N
	local d=$TMP/base$1 t0 t1 vpid
	mkdir -p "$d"
	"$B/sbx-vsockd" --socket "$d/vhost.sock" --uds "$d/vsock.sock" --cid 3 >"$d/vsockd.log" 2>&1 &
	vpid=$!
	BASE_PIDS+=("$vpid")
	for _ in $(seq 100); do [ -S "$d/vhost.sock" ] && break; sleep 0.02; done
	t0=$(now_ns)
	qemu-system-x86_64 -name sbx-baseline -M microvm,memory-backend=mem -accel "$ACCEL" \
		-cpu "$([ "$ACCEL" = kvm ] && echo host || echo max,erms=off,fsrm=off)" -m "${MEM}M" -smp 1 \
		-object "memory-backend-memfd,id=mem,size=${MEM}M,share=on" -nodefaults \
		-no-user-config -display none -no-reboot -serial "file:$d/console.log" \
		-chardev "socket,id=vu,path=$d/vhost.sock" -device vhost-user-vsock-device,chardev=vu \
		-kernel "$B/vmlinuz" -initrd "$B/baseline-initramfs.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1${KHZ:+ tsc_early_khz=$KHZ}" >"$d/qemu.log" 2>&1 || {
		say "baseline QEMU failed: $(tail -3 "$d/qemu.log")"
		kill "$vpid" 2>/dev/null
		exit 1
	}
	t1=$(now_ns)
	wait "$vpid" 2>/dev/null || true
	echo $(((t1 - t0) / 1000000))
}

# sbx create -> ready (the CLI's whole run), then what it recorded.
boot_sbx() { # N
	local t0 t1 info
	t0=$(now_ns)
	"$SBX" create --name "boot$1" --lifetime 10m --memory "$MEM" >/dev/null 2>"$TMP/create.err" ||
		{ say "sbx create failed: $(cat "$TMP/create.err")"; exit 1; }
	t1=$(now_ns)
	info=$("$SBX" info --json "boot$1")
	"$SBX" exec "boot$1" -- cat /sys/devices/system/clocksource/clocksource0/current_clocksource \
		>>"$TMP/boot.clock" 2>/dev/null || echo unknown >>"$TMP/boot.clock"
	echo "$(((t1 - t0) / 1000000)) $(echo "$info" | json_num boot_ms)" \
		"$(echo "$info" | json_num guest_start_ns) $(echo "$info" | json_num guest_listen_ns)" \
		"$(echo "$info" | json_num guest_modules_ns) $(echo "$info" | json_num guest_ready_ns)" \
		"$(echo "$info" | json_str accel)"
	"$SBX" kill "boot$1" >/dev/null
}

ACCEL=tcg
: >"$TMP/boot"
: >"$TMP/boot.clock"
for i in $(seq "$VM_BOOTS"); do
	# sbx first on odd runs (it also tells which accelerator QEMU gets)
	if [ $((i % 2)) = 1 ]; then
		s=$(boot_sbx "$i")
		ACCEL=${s##* }
		b=$(boot_baseline "$i")
	else
		b=$(boot_baseline "$i")
		s=$(boot_sbx "$i")
	fi
	s=${s% *}
	echo "$b $s" >>"$TMP/boot"
	say "boot $i: baseline $b ms; sbx create, boot_ms, guest start/listen/modules/ready ns: $s"
done
# columns: 1 baseline, 2 create wall, 3 boot_ms, 4 start, 5 listen, 6 modules, 7 ready (ns)
col() { awk -v c="$1" '{ print $c }' "$TMP/boot" | stats; }
colx() { awk "{ print $1 }" "$TMP/boot" | stats; }
brow() { # what side "n med p99 min max" unit-formatter ratio
	local n med p99 mn mx
	read -r n med p99 mn mx _ <<<"$3"
	echo "| $1 | $2 | $n | $(fmt_ms "$med") | min $(fmt_ms "$mn"), max $(fmt_ms "$mx") | $4 |"
}
echo "| measurement | side | N | median | range | ratio / difference |"
echo "|---|---|---|---|---|---|"
ratio=$(colx '$3 / $1' | awk '{ printf "%.2f (min %.2f, max %.2f)", $2, $4, $5 }')
diff=$(colx '$3 - $1' | awk '{ printf "+%.0f ms (min %+.0f, max %+.0f)", $2, $4, $5 }')
brow "boot to ready ($ACCEL)" "baseline: QEMU start → exit, image whose /init powers off at once" "$(col 1)" 1
brow "boot to ready ($ACCEL)" "sbx: QEMU start → agent READY (\`boot_ms\`)" "$(col 3)" "$ratio; $diff"
brow "boot to ready ($ACCEL)" "sbx: \`sbx create\` run → ready (whole CLI: config, initrd, sbx-vsockd, QEMU)" "$(col 2)" \
	"$(colx '$2 / $1' | awk '{ printf "%.2f", $2 }'); $(colx '$2 - $1' | awk '{ printf "+%.0f ms", $2 }')"
brow "in the guest (CLOCK_BOOTTIME)" "PID 1's first instruction (kernel boot before it)" "$(colx '$4 / 1e6')" ""
brow "in the guest (CLOCK_BOOTTIME)" "loading the kernel modules (virtio, vsock)" "$(colx '$6 / 1e6')" ""
read -r _ su _ _ _ <<<"$(colx '($5 - $4 - $6) / 1e6')"
brow "in the guest (CLOCK_BOOTTIME)" "**agent start-up**: first instruction → listening, less module loading" \
	"$(colx '($5 - $4 - $6) / 1e6')" "goal ≤ 20 ms: $(awk -v v="$su" 'BEGIN { print (v <= 20 ? "met" : "missed") }')"
brow "in the guest (CLOCK_BOOTTIME)" "first instruction → READY sent" "$(colx '($7 - $4) / 1e6')" ""
fine=$(grep -c '^tsc' "$TMP/boot.clock" || true)
echo
echo "The guest's clock after boot: \`tsc\` in $fine of $VM_BOOTS boots ($(sort "$TMP/boot.clock" | uniq -c |
	awk '{ printf "%s%s × %s", n++ ? ", " : "", $1, $2 }')). sbx boots with \`tsc=reliable\`"
echo "(launcher/qemu.c): without it, under a loaded host the kernel's clocksource watchdog could find"
echo "TCG's TSC skewed against jiffies and fall back to \`refined-jiffies\` (4 ms steps), quantizing"
echo "the guest timings above."
read -r _ bm _ _ _ <<<"$(col 1)"
read -r _ sm _ _ _ <<<"$(col 3)"
read -r _ cm _ _ _ <<<"$(col 2)"
echo "vm.boot $VM_BOOTS $bm $sm $cm $su $(colx '$3 - $1' | awk '{ print $2 }')" >>"$KV"

# ---- the sandbox for the rest -----------------------------------------------------
ID=bench
"$SBX" create --name $ID --lifetime 30m --memory "$MEM" >/dev/null
ADDR=$("$SBX" info --json $ID | json_str address)
UDS=${ADDR#hybrid:}
UDS=${UDS%:*}
TOKEN=$(cat "$SBX_STATE_DIR/$ID/token")
"$SBX" cp "$B/sbx-bench-static" "$ID:/tmp/sbx-bench"
"$SBX" exec $ID -- chmod 755 /tmp/sbx-bench
# A development-mode agent inside the guest, on a Unix socket; an echo
# server and a command server on raw vsock ports.
"$SBX" exec --detach $ID -- /init --listen unix:/tmp/bench.sock >/dev/null
"$SBX" exec --detach $ID -- vsock-tool listen 5002 >/dev/null
"$SBX" exec --detach $ID -- vsock-tool exec 5001 >/dev/null
for _ in $(seq 100); do "$SBX" exec $ID -- test -S /tmp/bench.sock && break; sleep 0.1; done

# ---- 2. exec round trip -----------------------------------------------------------
per=$(((VM_EXEC_N + VM_BLOCKS - 1) / VM_BLOCKS))
: >"$TMP/host" ; : >"$TMP/guest" ; : >"$TMP/echo" ; : >"$TMP/blocks"
for blk in $(seq "$VM_BLOCKS"); do
	SBX_TOKEN=$TOKEN "$B/sbx-bench" rtt "$ADDR" "$per" >"$TMP/h.blk"
	"$SBX" exec $ID -- /tmp/sbx-bench rtt unix:/tmp/bench.sock "$per" floor >"$TMP/g.blk"
	"$B/sbx-bench" vsock-rtt "$UDS" 5002 "$per" >"$TMP/e.blk"
	cat "$TMP/h.blk" >>"$TMP/host"
	cat "$TMP/g.blk" >>"$TMP/guest"
	cat "$TMP/e.blk" >>"$TMP/echo"
	hm=$(stats <"$TMP/h.blk" | awk '{ print $6 }')
	gm=$(awk '{ print $1 }' "$TMP/g.blk" | stats | awk '{ print $6 }')
	fm=$(awk '{ print $2 }' "$TMP/g.blk" | stats | awk '{ print $6 }')
	em=$(stats <"$TMP/e.blk" | awk '{ print $6 }')
	echo "$hm $gm $fm $em" >>"$TMP/blocks"
	say "exec block $blk: mean µs: host over vsock $hm, in-guest unix $gm, in-guest floor $fm, vsock echo $em"
done
bcol() { awk "{ print $1 }" "$TMP/blocks" | stats | awk '{ printf "%.2f (blocks: min %.2f, max %.2f)", $2, $4, $5 }'; }
erow() { # side "n med p99 min max mean" ratio
	local n med p99 mean
	read -r n med p99 _ _ mean <<<"$2"
	echo "| exec \`/bin/true\`, round trip, in a VM ($ACCEL) | $1 | $n | $(fmt_us "$med") | p99 $(fmt_us "$p99"); mean $(fmt_us "$mean") | $3 |"
}
CS=$("$SBX" exec $ID -- cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
UNSTABLE=$("$SBX" exec $ID -- sh -c 'dmesg | grep -m1 -i "unstable" || true')
echo
echo "The guest's clock source during these runs: \`$CS\`${UNSTABLE:+ (the kernel said: \`${UNSTABLE#*] }\`)}."
echo "In-guest times come from it, and with \`jiffies\` they move in 4 ms steps; so every ratio"
echo "below is of **means** per block (unbiased under coarse steps), the blocks alternated."
echo
echo "| measurement | side | N | median | p99; mean | ratio (of block means) |"
echo "|---|---|---|---|---|---|"
G=$(awk '{ print $1 }' "$TMP/guest" | stats)
H=$(stats <"$TMP/host")
erow "in the guest: fork+exec+wait (the guest's floor)" "$(awk '{ print $2 }' "$TMP/guest" | stats)" 1
erow "in the guest: the same client (static) → sbx-init on a Unix socket there" "$G" "$(bcol '$2 / $3') × the guest's floor"
erow "host → guest over vsock through sbx-vsockd (libsbx, hybrid address, with the token's challenge)" "$H" "$(bcol '$1 / $2') × in-guest"
erow "transport alone: connect through sbx-vsockd + 64-byte echo (vsock-tool listen)" "$(stats <"$TMP/echo")" "$(bcol '$4 / $2') × in-guest sbx"
echo "vm.exec $(echo "$H" | awk '{ print $1, $2, $3, $6 }') $(echo "$G" | awk '{ print $6 }') $(awk '{ print $1 / $2 }' "$TMP/blocks" | stats | awk '{ print $2 }') $CS" >>"$KV"

# ---- 3. throughput through sbx-vsockd ---------------------------------------------
bytes=$(numfmt --from=iec "$VM_BYTES")
mbps() { awk -v b="$bytes" -v ns="$1" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }
check() { [ "$1" = "$bytes" ] || { say "$2 moved $1 bytes, not $bytes"; exit 1; }; }
timed_in() { # what... (stdin: the bytes) -> MB/s
	local t0 t1 n
	t0=$(now_ns)
	n=$("$@" | wc -c)
	t1=$(now_ns)
	echo "$n $(mbps $((t1 - t0)))"
}
# The same commands on both sides: dd with 256 KiB blocks (busybox head and
# cat move 4 KiB at a time, which under TCG costs more than the transport).
count=$((bytes / 262144))
SINK='dd of=/dev/null bs=262144 2>/dev/null'
SOURCE="dd if=/dev/zero bs=262144 count=$count 2>/dev/null"
up_raw() { { echo "$SINK"; head -c "$bytes" /dev/zero; } | "$B/vsock-tool" hybrid "$UDS" 5001; }
up_sbx() { head -c "$bytes" /dev/zero | "$SBX" exec -i $ID -- sh -c "$SINK"; }
down_raw() { echo "$SOURCE" | "$B/vsock-tool" hybrid "$UDS" 5001; }
down_sbx() { "$SBX" exec $ID -- sh -c "$SOURCE"; }
# The same with the command writing straight into a connection of its own
# (OUTPUT, docs/PROTOCOL.md "Direct standard output"): no relay at all.
down_direct() { "$SBX" exec --direct-stdout $ID -- sh -c "$SOURCE"; }
# The floor of any relay in the guest: the same command's output carried
# through a pipe by a second process (dd, blocking 256 KiB reads and
# writes) onto the raw vsock stream, as the agent carries it onto its own.
down_relay() { echo "$SOURCE | dd bs=262144 2>/dev/null" | "$B/vsock-tool" hybrid "$UDS" 5001; }
# The transport alone: vsock-tool sink/source in the guest (one connection
# each, started beforehand), 256 KiB reads and writes, no command.
up_ceil() { head -c "$bytes" /dev/zero | "$B/vsock-tool" hybrid "$UDS" 5003; }
down_ceil() { "$B/vsock-tool" hybrid "$UDS" 5004 </dev/null; }
in_guest() { "$SBX" exec $ID -- sh -c "$SOURCE | $SINK"; }
time_only() { local t0 t1; t0=$(now_ns); "$@"; t1=$(now_ns); mbps $((t1 - t0)); }
: >"$TMP/tput"
for i in $(seq "$VM_RUNS"); do
	"$SBX" exec --detach $ID -- vsock-tool sink 5003 >/dev/null
	"$SBX" exec --detach $ID -- vsock-tool source 5004 "$bytes" >/dev/null
	sleep 0.5
	a=$(time_only up_raw) ; b=$(time_only up_sbx)
	read -r n c <<<"$(timed_in down_raw)"; check "$n" "raw vsock download"
	read -r n d <<<"$(timed_in down_sbx)"; check "$n" "sbx exec download"
	e=$(time_only in_guest)
	f=$(time_only up_ceil)
	read -r n g <<<"$(timed_in down_ceil)"; check "$n" "vsock-tool source"
	read -r n h <<<"$(timed_in down_relay)"; check "$n" "relayed raw vsock download"
	read -r n j <<<"$(timed_in down_direct)"; check "$n" "sbx exec --direct-stdout download"
	echo "$a $b $c $d $e $f $g $h $j" >>"$TMP/tput"
	say "throughput run $i (MB/s): up raw $a sbx $b ceiling $f; down raw $c sbx $d direct $j ceiling $g relayed $h; in-guest pipe $e"
done
tcol() { awk "{ print $1 }" "$TMP/tput" | stats; }
trow() { # what side column ratio
	local n med mn mx
	read -r n med _ mn mx _ <<<"$(tcol "$3")"
	echo "| $1 | $2 | $n | $(printf '%.0f' "$med") MB/s | min $(printf '%.0f' "$mn"), max $(printf '%.0f' "$mx") | $4 |"
}
rr() { tcol "$1" | awk '{ printf "%.2f (min %.2f, max %.2f)", $2, $4, $5 }'; }
echo
echo "| measurement | side | N | median | range | ratio |"
echo "|---|---|---|---|---|---|"
W="host → guest, $VM_BYTES, through sbx-vsockd"
trow "$W" "transport ceiling: vsock-tool sink in the guest, 256 KiB reads, no command" '$6' "sbx/ceiling $(tcol '$2 / $6' | awk '{ printf "%.2f", $2 }')"
trow "$W" "baseline: the same command (\`$SINK\`) with a raw vsock stream as its stdin (vsock-tool exec)" '$1' 1
trow "$W" "sbx: \`sbx exec -i ID -- sh -c '$SINK'\` (the CLI)" '$2' "$(rr '$2 / $1')"
W="guest → host, $VM_BYTES, through sbx-vsockd"
trow "$W" "transport ceiling: vsock-tool source in the guest, 256 KiB writes, no command" '$7' "sbx/ceiling $(tcol '$4 / $7' | awk '{ printf "%.2f", $2 }')"
trow "$W" "baseline: the same command (\`$SOURCE\`) with a raw vsock stream as its stdout (vsock-tool exec)" '$3' 1
trow "$W" "sbx: \`sbx exec ID -- sh -c '$SOURCE'\` (the CLI)" '$4' "$(rr '$4 / $3')"
trow "$W" "sbx, direct stdout: \`sbx exec --direct-stdout ID -- sh -c '$SOURCE'\` (the command's stdout is its own vsock connection)" '$9' "$(rr '$9 / $3')"
trow "$W" "a relay's floor: the same command piped into \`dd bs=262144\` onto the raw vsock stream" '$8' "$(rr '$8 / $3'); sbx/relay $(tcol '$4 / $8' | awk '{ printf "%.2f", $2 }')"
trow "inside the guest, $VM_BYTES" "the source command piped into the sink command, no vsock (what TCG allows at all)" '$5' ""
echo "vm.tput_direct $(tcol '$9' | awk '{ print $2 }') $(tcol '$9 / $3' | awk '{ print $2 }')" >>"$KV"
echo "vm.tput $(for c in 2 1 4 3 5 6 7; do tcol "\$$c" | awk '{ printf "%s ", $2 }'; done)$(tcol '$2 / $1' | awk '{ print $2 }') $(tcol '$4 / $3' | awk '{ print $2 }')" >>"$KV"
