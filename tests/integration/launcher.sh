#!/bin/bash
# The launcher's state directory without VMs: what a sandbox that is gone
# leaves behind is cleaned up by `sbx ls` and `sbx kill`, and a directory
# that cannot be removed is named with what is still in it.
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state
mkdir -p "$SBX_STATE_DIR"

# A kill that lost the race with QEMU's supervisor left the directory
# holding only qemu.exit (issue 18, item 11): hidden from ls, id taken.
leftover() {
	mkdir -p "$SBX_STATE_DIR/$1" && echo 0 >"$SBX_STATE_DIR/$1/qemu.exit"
}

test_ls_cleans() {
	leftover sbx-dead1 || return 1
	"$SBX" ls >/dev/null || return 1
	[ ! -e "$SBX_STATE_DIR/sbx-dead1" ] || fail "ls left $(ls "$SBX_STATE_DIR/sbx-dead1")"
}

test_kill_cleans() {
	local out
	leftover sbx-dead2 || return 1
	out=$("$SBX" kill sbx-dead2 2>&1)
	[[ $out == *"no such sandbox: sbx-dead2"* ]] || fail "kill said: $out" || return 1
	[ ! -e "$SBX_STATE_DIR/sbx-dead2" ] || fail "kill left it"
}

test_booting_left_alone() {
	# A sandbox still booting has no metadata yet, but more than qemu.exit.
	mkdir -p "$SBX_STATE_DIR/sbx-booting" && : >"$SBX_STATE_DIR/sbx-booting/token" || return 1
	"$SBX" ls >/dev/null || return 1
	[ -e "$SBX_STATE_DIR/sbx-booting/token" ] || fail "ls removed a booting sandbox"
}

t "sbx ls removes what a racing kill left" test_ls_cleans
t "sbx kill of it says no such sandbox and removes it" test_kill_cleans
t "a sandbox still booting is left alone" test_booting_left_alone
