# Shared helpers for the shell test suites (integration and system).
# A suite sources this, defines test functions, and calls `t NAME FUNC`.
# Each test prints "ok - SUITE: NAME" or "not ok - SUITE: NAME"; a test
# function explains a failure on stderr with `fail MESSAGE` (which returns 1).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${SBX_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
SBX=$BUILD/sbx
SBX_INIT=$BUILD/sbx-init
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

# t NAME FUNC [ARGS...]: runs one test.
t() {
	local name=$1
	shift
	if "$@"; then
		echo "ok - $SUITE: $name"
	else
		echo "not ok - $SUITE: $name"
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
