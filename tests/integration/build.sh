#!/bin/bash
# Checks on what `make` produced: the guest agent must run as PID 1 of any
# initramfs, so it is static (no interpreter, no shared libraries) and
# stripped.
. "$(dirname "$0")/../lib.sh"

test_static() {
	[ -x "$SBX_INIT" ] || fail "$SBX_INIT missing" || return 1
	# The instrumented build of `make asan` is dynamic on purpose.
	[[ $BUILD == */asan ]] && return 0
	readelf -l "$SBX_INIT" | grep -q INTERP && { fail "has a program interpreter"; return 1; }
	readelf -d "$SBX_INIT" 2>/dev/null | grep -q NEEDED && { fail "needs shared libraries"; return 1; }
	file -b "$SBX_INIT" 2>/dev/null | grep -q "statically linked" ||
		fail "file(1) says: $(file -b "$SBX_INIT")"
}

test_stripped() {
	[[ $BUILD == */asan ]] && return 0
	readelf -S "$SBX_INIT" | grep -q '\.symtab' && { fail "not stripped"; return 1; }
	return 0
}

test_runs_alone() {
	# No file but itself: an empty environment, no /etc needed for --help.
	env -i "$SBX_INIT" --version | grep -q '^sbx-init ' || fail "--version did not answer"
}

t "sbx-init is statically linked" test_static
t "sbx-init is stripped" test_stripped
t "sbx-init runs with an empty environment" test_runs_alone
