#!/bin/bash
# Runs test suites and prints one summary line: "N passed, N failed".
# Every suite prints TAP-style lines ("ok - name" / "not ok - name");
# cmocka unit tests are switched to TAP output.
#   tests/run.sh [unit] [integration] [system]
# SBX_BUILD selects the build directory (build/asan for `make asan`).
set -u
cd "$(dirname "$0")/.."
export SBX_BUILD=${SBX_BUILD:-build}
export CMOCKA_MESSAGE_OUTPUT=TAP
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_suite() { # name command...
	local name=$1 out status
	shift
	echo "# $name"
	out=$(mktemp)
	"$@" >"$out" 2>&1
	status=$?
	grep -E '^(not ok|ok)|^#|^Bail' "$out" || true
	cat "$out" >>"$log"
	# A suite that dies (a crash, a bail-out) without saying which test
	# failed still counts as a failure.
	if [ $status -ne 0 ] && ! grep -q '^not ok' "$out"; then
		echo "not ok - $name: exited with status $status" | tee -a "$log"
	fi
	rm -f "$out"
}

for suite in "$@"; do
	case $suite in
	unit)
		for t in "$SBX_BUILD"/tests/test_*; do
			[ -x "$t" ] && run_suite "unit: $(basename "$t")" "$t"
		done
		;;
	integration | system)
		for t in tests/$suite/*.sh; do
			[ -x "$t" ] && run_suite "$suite: $(basename "$t" .sh)" timeout 1800 "$t"
		done
		;;
	fuzz)
		run_suite "fuzz: every target briefly" timeout 1800 tests/fuzz/run.sh
		;;
	*)
		echo "unknown suite: $suite" >&2
		exit 2
		;;
	esac
done

passed=$(grep -c '^ok' "$log")
failed=$(grep -c '^not ok' "$log")
if [ "$failed" -gt 0 ]; then
	echo "# failed:"
	grep '^not ok' "$log" | sed 's/^/#   /'
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
