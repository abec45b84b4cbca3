# Shared helpers for the shell test suites (integration and system).
# A suite sources this, defines test functions, and calls `t NAME FUNC`.
# Each test prints "ok - SUITE: NAME" or "not ok - SUITE: NAME"; a test
# function explains a failure on stderr with `fail MESSAGE` (which returns 1).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SBX_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SBX=$BUILD/sbx
SBX_INIT=$BUILD/sbx-init
# The image sandboxes boot when a suite names none. sbx's default is
# Debian, and the system suites that pass on it in about the time they take
# on the minimal image run on it (table in docs/IMAGES.md, "Which image the
# test suites boot"); the others boot the small initramfs. A suite that
# tests the default unsets it (sandbox.sh); SBX_TEST_IMAGE=debian or
# =minimal runs any suite on that image (every one passes on both).
case $(basename "$(dirname "$0")")/$(basename "$0" .sh) in
system/fs | system/net | system/egress | system/lifetime | system/hardening) T_IMAGE=debian ;;
*) T_IMAGE=minimal ;;
esac
export SBX_IMAGE=${SBX_TEST_IMAGE:-$T_IMAGE}
SUITE=${SUITE:-$(basename "$0" .sh)}
T_TMP=$(mktemp -d /tmp/sbx-test.XXXXXX)
T_CLEANUP=()

t_cleanup() {
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${T_CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	rm -rf "$T_TMP"
}
trap t_cleanup EXIT

# on_exit CMD: run CMD when the suite ends (last registered runs first).
on_exit() { T_CLEANUP+=("$*"); }

fail() {
	echo "#   $*" >&2
	return 1
}

# t NAME FUNC [ARGS...]: runs one test; returns its status, so that a
# setup test can stop the suite: `t "setup" setup || exit 1`.
t() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $SUITE: $name"
	else
		echo "not ok - $SUITE: $name"
		return 1
	fi
}

# skip NAME REASON: a test that cannot run here. It is counted as skipped,
# never as passed (TAP's "# SKIP" directive; tests/run.sh counts it apart).
skip() {
	echo "ok - $SUITE: $1 # SKIP $2"
}

# instrumented FILE: FILE was built with the sanitizers (make asan).
instrumented() {
	grep -q __asan_init "$1" 2>/dev/null
}

# t_sanitizers NAME FUNC [ARGS...]: a check that reads sanitizer reports.
# Without an instrumented agent there are none to read: skipped, not passed.
t_sanitizers() {
	local name=$1
	shift
	if instrumented "$SBX_INIT"; then
		t "$name" "$@"
	else
		skip "$name" "not an instrumented build (make asan runs it)"
	fi
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" == "$3" ] || fail "$1: got '$2', want '$3'"
}

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge "$deadline" ] && return 1
		sleep 0.05
	done
}

# Pids of the processes whose parent is $1.
children_of() { ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' '; }

# Every descendant of $1 (not $1 itself).
descendants_of() {
	local c
	for c in $(children_of "$1"); do
		echo "$c"
		descendants_of "$c"
	done
}

# Zombie processes among the descendants of $1.
zombies_under() {
	local p
	for p in $(descendants_of "$1"); do
		[ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" == Z ] && echo "$p"
	done
	return 0
}
