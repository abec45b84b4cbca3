#!/bin/bash
# System tests for the host memory a sandbox costs, with real sandboxes
# under QEMU: memory the guest frees goes back to the host (the balloon's
# free-page reporting), so QEMU's RSS falls back after a 400 MB spike.
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'

# The host RSS of a sandbox's QEMU, in KiB.
qemu_pid() { sed -n 's/^qemu_pid = //p' "$SBX_STATE_DIR/$1/meta"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$(qemu_pid "$1")/status"; }

test_setup() {
	"$SBX" create --name mem --lifetime 10m --memory 1024 >/dev/null
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

t "setup: a 1 GiB sandbox" test_setup || exit 1
t "400 MB freed in the guest leave QEMU's RSS within 10% in 10 s" test_free_returns
