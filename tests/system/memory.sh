#!/bin/bash
# System tests for the host memory a sandbox costs, with real sandboxes
# under QEMU: memory the guest frees goes back to the host (the balloon's
# free-page reporting), so QEMU's RSS falls back after a 400 MB spike; and
# what the guest freed at boot goes back too (docs/MEMORY.md).
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'

# The host RSS of a sandbox's QEMU, in KiB.
qemu_pid() { sed -n 's/^qemu_pid = //p' "$SBX_STATE_DIR/$1/meta"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$(qemu_pid "$1")/status"; }

test_setup() {
	# booted (--cold), whatever templates the data directory holds: a
	# clone's memory is another story (docs/MEMORY.md)
	"$SBX" create --cold --name mem --lifetime 10m --memory 1024 >/dev/null
}

# 400 MB written to a tmpfs file touches 400 MB of guest RAM; removing it
# frees them in the guest, and the guest reports them to QEMU, which
# punches them out of the memfd.
test_free_returns() {
	local before peak after i
	sleep 2 # let boot-time frees be reported first
	before=$(rss_kib mem)
	"$SBX" exec mem -- sh -c 'head -c 419430400 /dev/zero > /dev/shm/big' || return 1
	peak=$(rss_kib mem)
	[ "$peak" -ge $((before + 350 * 1024)) ] ||
		fail "RSS rose from $before to $peak KiB only: nothing was allocated" || return 1
	"$SBX" exec mem -- rm /dev/shm/big || return 1
	for ((i = 0; i < 100; i++)); do
		after=$(rss_kib mem)
		[ "$after" -le $((before * 11 / 10)) ] && break
		sleep 0.1
	done
	echo "#   QEMU RSS: $before KiB idle, $peak KiB with 400 MB, $after KiB after ${i}00 ms" >&2
	[ "$after" -le $((before * 11 / 10)) ] ||
		fail "RSS $after KiB 10 s after the free, more than 110% of $before KiB"
}

# The guest RAM an idle minimal sandbox keeps in the host (the memfd's
# RSS): ~115 MiB while the 16 MiB DMA zone, where the compressed kernel
# was loaded, went unreported (its free blocks too few for order-9
# reporting); ~92 MiB with sbx-init's order 5 and no tracefs.
memfd_kib() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 ~ /memfd:/) } /^Rss:/ && m { k += $2 } END { print k + 0 }' \
		"/proc/$(qemu_pid "$1")/smaps"
}
test_idle_guest_ram() {
	local k i
	"$SBX" create --cold --name idle --image minimal --lifetime 10m --memory 1024 >/dev/null ||
		return 1
	for ((i = 0; i < 150; i++)); do
		k=$(memfd_kib idle)
		[ "$k" -le $((105 * 1024)) ] && break
		sleep 0.1
	done
	echo "#   guest RAM in the host: $k KiB, ${i}00 ms after ready" >&2
	"$SBX" kill idle >/dev/null
	[ "$k" -le $((105 * 1024)) ] || fail "the idle guest keeps $k KiB of host RAM 15 s after ready, more than 105 MiB"
}

t "an idle minimal sandbox keeps at most 105 MiB of guest RAM in the host" test_idle_guest_ram
t "setup: a 1 GiB sandbox" test_setup || exit 1
t "400 MB freed in the guest leave QEMU's RSS within 10% in 10 s" test_free_returns
