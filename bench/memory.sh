#!/bin/bash
# bench/memory.sh: the host memory a sandbox costs, as markdown for
# bench/results.md. Boots its own sandboxes (state in a temp dir) and
# leaves nothing running.
#
# 1. Idle: MEM_N sandboxes of each image (minimal; debian when built),
#    one at a time, MEM_SETTLE_S seconds after ready. QEMU's RSS and PSS,
#    split by mapping (/proc/PID/smaps): the guest's RAM (the memfd: what
#    the guest touched and has not given back), TCG's translation buffer
#    (the one anonymous rwx mapping), the rest of QEMU (its heap, its
#    copies of the kernel and initramfs, binaries); and sbx-vsockd's.
# 2. Memory back to the host: 400 MB written to /dev/shm in the guest and
#    removed; QEMU's RSS before, at the peak, and when it is back within
#    10% of before (the balloon's free-page reporting), with the time.
# 3. Pause and resume (sbx create --pausable, a -M pc machine) of an idle
#    minimal sandbox of 768 MiB and of 2 GiB: create -> ready, the time
#    `sbx pause` and `sbx resume` report, the size of the saved state.
# 4. Idle clones: MEM_N sandboxes of each image made by a plain
#    `sbx create` once a template of that image and memory size exists
#    (`sbx template create`: the create then restores from it), one at a
#    time, split as in 1, MEM_SETTLE_S and MEM_LATE_S seconds after ready,
#    and after MEM_EXEC_N `sbx exec -- true`.
#    A clone's RAM is a memfd the launcher filled with the template's
#    pages: QEMU maps only those the guest touched since the restore, so
#    its RSS leaves out the rest of the memfd, which the host holds all
#    the same. The table gives the memfd's allocated size and the host
#    memory the sandbox holds: QEMU's RSS plus the memfd's pages it has
#    not mapped.
#
# Environment: MEM_N (3), MEM_SETTLE_S (5), MEM_LATE_S (15), MEM_EXEC_N (10),
# MEM_MIB (1024).
set -eu
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_sandboxes memory
MEM_N=${MEM_N:-3}
MEM_SETTLE_S=${MEM_SETTLE_S:-5}
MEM_LATE_S=${MEM_LATE_S:-15}
MEM_EXEC_N=${MEM_EXEC_N:-10}
MEM_MIB=${MEM_MIB:-1024}

# the median of a column of numbers
median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int(0.5 * (NR - 1) + 0.5) + 1] : 0 }'; }
# the median of column N of FILE
col() { awk -v c="$2" '{ print $c }' "$1" | median; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pid_of() { sed -n "s/^$2_pid = //p" "$SBX_STATE_DIR/$1/meta"; }
rss() { [ -n "$1" ] && awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" || echo 0; }

# "rss pss memfd tcg" in KiB for a QEMU pid
qemu_split() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { memfd = ($6 ~ /memfd:/); tcg = ($2 == "rwxp" && $6 == "") }
	     /^Rss:/ { rss += $2; if (memfd) m += $2; else if (tcg) t += $2 }
	     /^Pss:/ { pss += $2 }
	     END { print rss + 0, pss + 0, m + 0, t + 0 }' "/proc/$1/smaps"
}

# The KiB the guest's RAM (the memfd QEMU holds open) has allocated in the
# host, mapped by QEMU or not
memfd_kib() {
	local f
	for f in /proc/"$1"/fd/*; do
		case $(readlink "$f") in
		*memfd:*) echo $(($(stat -L -c %b "$f") * 512 / 1024)); return ;;
		esac
	done
	say "QEMU $1 holds no memfd: its guest RAM cannot be counted"
	exit 1
}

# One idle sandbox of image $1: "rss pss memfd tcg vsockd_rss create_ms"
idle_one() { # image n
	local id="idle-$1-$2" t0 t1 q
	t0=$(now_ns)
	"$SBX" create --name "$id" --image "$1" --lifetime 10m --memory "$MEM_MIB" >/dev/null \
		2>"$TMP/create.err" || { say "sbx create --image $1 failed: $(cat "$TMP/create.err")"; exit 1; }
	t1=$(now_ns)
	sleep "$MEM_SETTLE_S"
	q=$(pid_of "$id" qemu)
	echo "$(qemu_split "$q") $(rss "$(pid_of "$id" vsockd)") $(((t1 - t0) / 1000000))"
	"$SBX" kill "$id" >/dev/null
}

IMAGES=minimal
[ -e "$B/images/debian/base.erofs" ] && IMAGES="minimal debian"
echo "| idle sandbox, $MEM_MIB MiB, ${MEM_SETTLE_S} s after ready (median of $MEM_N) | QEMU RSS | QEMU PSS | guest RAM (memfd) | TCG translation buffer | rest of QEMU | sbx-vsockd RSS |"
echo "|---|---|---|---|---|---|---|"
for img in $IMAGES; do
	: >"$TMP/idle"
	for i in $(seq "$MEM_N"); do
		idle_one "$img" "$i" >>"$TMP/idle"
		say "$img $i: rss pss memfd tcg vsockd create_ms: $(tail -1 "$TMP/idle")"
	done
	r=$(col "$TMP/idle" 1) p=$(col "$TMP/idle" 2) m=$(col "$TMP/idle" 3) tc=$(col "$TMP/idle" 4) v=$(col "$TMP/idle" 5)
	rest=$(awk '{ print $1 - $3 - $4 }' "$TMP/idle" | median)
	echo "| $img | $(mib "$r") MiB | $(mib "$p") MiB | $(mib "$m") MiB | $(mib "$tc") MiB | $(mib "$rest") MiB | $(mib "$v") MiB |"
	echo "mem.idle.$img $MEM_N $r $p $m $tc $rest $v" >>"$KV"
done

# ---- 2. memory back to the host ----------------------------------------------------
"$SBX" create --name give --lifetime 10m --memory "$MEM_MIB" >/dev/null
sleep "$MEM_SETTLE_S"
q=$(pid_of give qemu)
before=$(rss "$q")
"$SBX" exec give -- sh -c 'head -c 419430400 /dev/zero > /dev/shm/big'
peak=$(rss "$q")
"$SBX" exec give -- rm /dev/shm/big
t0=$(now_ns)
until [ "$(rss "$q")" -le $((before * 11 / 10)) ]; do
	[ $(($(now_ns) - t0)) -gt 30000000000 ] && break
	sleep 0.05
done
ms=$((($(now_ns) - t0) / 1000000))
after=$(rss "$q")
echo
echo "| 400 MB written to /dev/shm in the guest, then removed | QEMU RSS | |"
echo "|---|---|---|"
echo "| before | $(mib "$before") MiB | |"
echo "| with the 400 MB file | $(mib "$peak") MiB | |"
echo "| after the removal | $(mib "$after") MiB | $ms ms after \`rm\` returned (goal: within 10% of before in ≤ 10 s) |"
echo "mem.give $before $peak $after $ms" >>"$KV"

# ---- 3. pause and resume -------------------------------------------------------------
echo
echo "| pausable minimal sandbox, idle (median of $MEM_N) | create → ready | sbx pause | saved state | sbx resume (→ agent answers) |"
echo "|---|---|---|---|---|"
for mib in 768 2048; do
	: >"$TMP/pause"
	for i in $(seq "$MEM_N"); do
		id=pause-$mib-$i
		t0=$(now_ns)
		"$SBX" create --name "$id" --pausable --lifetime 10m --memory "$mib" >/dev/null
		t1=$(now_ns)
		sleep "$MEM_SETTLE_S"
		p=$("$SBX" pause "$id" | awk '{ print $4 }')
		size=$(stat -c %s "$SBX_DATA_DIR/paused/$id.state")
		r=$("$SBX" resume "$id" | awk '{ print $4 }')
		"$SBX" exec "$id" -- true
		"$SBX" kill "$id" >/dev/null
		echo "$(((t1 - t0) / 1000000)) $p $size $r" >>"$TMP/pause"
		say "pause $mib MiB $i: create_ms pause_ms state_bytes resume_ms: $(tail -1 "$TMP/pause")"
	done
	c=$(col "$TMP/pause" 1) p=$(col "$TMP/pause" 2) sz=$(col "$TMP/pause" 3) r=$(col "$TMP/pause" 4)
	echo "| $mib MiB | $c ms | $p ms | $(awk -v b="$sz" 'BEGIN { printf "%.0f MB", b / 1e6 }') | $r ms |"
	echo "mem.pause.$mib $MEM_N $c $p $sz $r" >>"$KV"
done

# ---- 4. idle clones ---------------------------------------------------------------------
# One clone of image $1 (a plain create: the template is picked):
# "rss pss memfd tcg alloc" at MEM_SETTLE_S, the same at MEM_LATE_S and
# after MEM_EXEC_N `sbx exec -- true` (TCG's buffer grows with what runs),
# then "vsockd_rss create_ms"
clone_one() { # image n
	local id="clone-$1-$2" t0 t1 q got a1 m1 a2 m2 a3 m3
	t0=$(now_ns)
	"$SBX" create --name "$id" --image "$1" --lifetime 10m --memory "$MEM_MIB" >/dev/null \
		2>"$TMP/create.err" || { say "sbx create --image $1 (a clone) failed: $(cat "$TMP/create.err")"; exit 1; }
	t1=$(now_ns)
	got=$(sed -n 's/^template = //p' "$SBX_STATE_DIR/$id/meta")
	[ "$got" = "mem-$1" ] || { say "$id: a clone of '$got', not of mem-$1"; exit 1; }
	q=$(pid_of "$id" qemu)
	# Plain assignments: a memfd_kib that fails stops the script (set -e).
	sleep "$MEM_SETTLE_S"
	a1=$(qemu_split "$q")
	m1=$(memfd_kib "$q")
	sleep $((MEM_LATE_S - MEM_SETTLE_S))
	a2=$(qemu_split "$q")
	m2=$(memfd_kib "$q")
	for _ in $(seq "$MEM_EXEC_N"); do "$SBX" exec "$id" -- true; done
	a3=$(qemu_split "$q")
	m3=$(memfd_kib "$q")
	echo "$a1 $m1 $a2 $m2 $a3 $m3 $(rss "$(pid_of "$id" vsockd)") $(((t1 - t0) / 1000000))"
	"$SBX" kill "$id" >/dev/null
}

echo
echo "| idle clone (\`sbx create\` with a template), $MEM_MIB MiB (median of $MEM_N) | after ready | QEMU RSS | QEMU PSS | guest RAM mapped by QEMU | guest RAM in the host (the memfd) | TCG translation buffer | rest of QEMU | host memory (RSS + memfd not mapped) | sbx-vsockd RSS |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for img in $IMAGES; do
	t0=$(now_ns)
	"$SBX" template create "mem-$img" --image "$img" --memory "$MEM_MIB" >/dev/null
	say "template mem-$img made in $((($(now_ns) - t0) / 1000000)) ms"
	: >"$TMP/clone"
	for i in $(seq "$MEM_N"); do
		clone_one "$img" "$i" >>"$TMP/clone"
		say "$img clone $i: (rss pss memfd tcg alloc) at ${MEM_SETTLE_S} s, at ${MEM_LATE_S} s, after exec; vsockd create_ms: $(tail -1 "$TMP/clone")"
	done
	f=$TMP/clone
	for at in 0 5 10; do
		r=$(col "$f" $((1 + at))) p=$(col "$f" $((2 + at))) m=$(col "$f" $((3 + at)))
		tc=$(col "$f" $((4 + at))) a=$(col "$f" $((5 + at)))
		rest=$(awk -v o="$at" '{ print $(1 + o) - $(3 + o) - $(4 + o) }' "$f" | median)
		host=$(awk -v o="$at" '{ print $(1 + o) + $(5 + o) - $(3 + o) }' "$f" | median)
		v=$(col "$f" 16) c=$(col "$f" 17)
		s="$MEM_SETTLE_S s"
		[ "$at" = 5 ] && s="$MEM_LATE_S s"
		[ "$at" = 10 ] && s="$MEM_LATE_S s + $MEM_EXEC_N × exec"
		echo "| $img (create → ready $c ms) | $s | $(mib "$r") MiB | $(mib "$p") MiB | $(mib "$m") MiB | $(mib "$a") MiB | $(mib "$tc") MiB | $(mib "$rest") MiB | $(mib "$host") MiB | $(mib "$v") MiB |"
		echo "mem.clone.$img.$([ "$at" = 10 ] && echo exec || echo "${s% s}") $MEM_N $r $p $m $tc $rest $a $host $v $c" >>"$KV"
	done
	"$SBX" template rm "mem-$img" >/dev/null
done
