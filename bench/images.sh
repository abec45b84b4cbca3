#!/bin/bash
# bench/images.sh: the Debian image (sbx's default) against the minimal one
# (busybox in the initramfs), as markdown for bench/results.md, in the same
# run: `sbx create` → ready (the CLI's whole run, the time a user waits),
# alternated, IMG_BOOTS times each; then the host memory of one idle
# sandbox of each (RSS and PSS of QEMU + sbx-vsockd, IMG_IDLE_S seconds
# after ready). Issue 16's goal: Debian ≤ 1.15 × minimal. Boots its own
# sandboxes (state in a temp dir) and leaves nothing running.
#
# Environment: IMG_BOOTS (5), IMG_IDLE_S (10), IMG_MEM (1024).
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_sandboxes images
IMG_BOOTS=${IMG_BOOTS:-5}
IMG_IDLE_S=${IMG_IDLE_S:-10}
IMG_MEM=${IMG_MEM:-1024}

# "n median min max" of a column of numbers
stats() { sort -g | awk '{ v[NR] = $1 } END {
	if (!NR) { print "0 0 0 0"; exit }
	print NR, v[int(0.5 * (NR - 1) + 0.5) + 1], v[1], v[NR] }'; }
meta() { sed -n "s/^$2 = //p" "$SBX_STATE_DIR/$1/meta"; }
# kB of RSS and PSS of a process: "rss pss"
mem_of() { awk '/^Rss:/ { r = $2 } /^Pss:/ { p = $2 } END { print r + 0, p + 0 }' "/proc/$1/smaps_rollup"; }

create() { # NAME IMAGE: prints the wall time of `sbx create` in ms
	local t0 t1
	t0=$(now_ns)
	"$SBX" create --name "$1" --image "$2" --lifetime 10m --memory "$IMG_MEM" >/dev/null \
		2>"$TMP/create.err" || { say "sbx create --image $2 failed: $(cat "$TMP/create.err")"; exit 1; }
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000000))
}

: >"$TMP/minimal"
: >"$TMP/debian"
for i in $(seq "$IMG_BOOTS"); do
	# each image first on every other run
	if [ $((i % 2)) = 1 ]; then order="minimal debian"; else order="debian minimal"; fi
	for img in $order; do
		ms=$(create "$img$i" "$img")
		"$SBX" kill "$img$i" >/dev/null
		echo "$ms" >>"$TMP/$img"
		say "boot $i: $img $ms ms"
	done
done
read -r n mmed mmin mmax <<<"$(stats <"$TMP/minimal")"
read -r _ dmed dmin dmax <<<"$(stats <"$TMP/debian")"
ratio=$(awk -v d="$dmed" -v m="$mmed" 'BEGIN { printf "%.2f", d / m }')

# Idle host memory: one sandbox of each, side by side.
for img in minimal debian; do
	create "idle-$img" "$img" >/dev/null
done
sleep "$IMG_IDLE_S"
for img in minimal debian; do
	read -r qr qp <<<"$(mem_of "$(meta "idle-$img" qemu_pid)")"
	read -r vr vp <<<"$(mem_of "$(meta "idle-$img" vsockd_pid)")"
	echo "$((qr + vr)) $((qp + vp))" >"$TMP/mem.$img"
	"$SBX" kill "idle-$img" >/dev/null
done
read -r mr mp <"$TMP/mem.minimal"
read -r dr dp <"$TMP/mem.debian"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo "| measurement | image | N | median | range | ratio |"
echo "|---|---|---|---|---|---|"
echo "| \`sbx create\` → ready ($IMG_MEM MiB) | minimal (initramfs) | $n | $mmed ms | min $mmin, max $mmax ms | 1 |"
echo "| \`sbx create\` → ready ($IMG_MEM MiB) | debian (erofs + overlay on a sparse disk) | $n | $dmed ms | min $dmin, max $dmax ms | $ratio (goal ≤ 1.15) |"
echo "| host memory of an idle sandbox, ${IMG_IDLE_S} s after ready: QEMU + sbx-vsockd, RSS / PSS | minimal | 1 | $(mib "$mr") / $(mib "$mp") | | |"
echo "| host memory of an idle sandbox, ${IMG_IDLE_S} s after ready: QEMU + sbx-vsockd, RSS / PSS | debian | 1 | $(mib "$dr") / $(mib "$dp") | | $(awk -v d="$dr" -v m="$mr" 'BEGIN { printf "%.2f", d / m }') (RSS) |"
echo "vm.images $n $mmed $dmed $ratio $mr $dr" >>"$KV"
