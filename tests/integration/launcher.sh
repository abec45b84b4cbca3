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

# One convention for usage errors (issue 18, item 16): exit 2, before
# anything starts.
test_usage_errors() {
	local args rc
	for args in "--memory 5" "--allow-net http://api.example.com" "--allow-net a:99999" \
		"--disk 1k" "--lifetime forever" "--bogus"; do
		# shellcheck disable=SC2086
		"$SBX" create $args >/dev/null 2>&1
		rc=$?
		[ $rc -eq 2 ] || fail "sbx create $args: exit $rc, want 2" || return 1
	done
	[ -z "$(ls -A "$SBX_STATE_DIR")" ] || fail "left: $(ls -A "$SBX_STATE_DIR")"
}

test_allow_net_url() {
	local out
	out=$("$SBX" create --allow-net https://api.example.com/v1 2>&1)
	[[ $out == *"a URL, not a pattern"*"--allow-net api.example.com:443"* ]] || fail "said: $out"
}

t "usage errors exit 2, whatever the option" test_usage_errors
t "a URL given to --allow-net says what to write" test_allow_net_url
t "sbx ls removes what a racing kill left" test_ls_cleans
t "sbx kill of it says no such sandbox and removes it" test_kill_cleans
t "a sandbox still booting is left alone" test_booting_left_alone
