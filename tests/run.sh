#!/bin/bash
# Runs test suites and prints one summary line: "N passed, N failed, N skipped".
# Every suite prints TAP-style lines ("ok - name" / "not ok - name"; a
# skipped check is "ok - name # SKIP why" and counts as skipped, never as
# passed); cmocka unit tests are switched to TAP output.
#   tests/run.sh [unit] [integration] [system] [sdk] [fuzz]
# SBX_BUILD selects the build directory (build/asan for `make asan`).
#
# tests/plan lists every suite that must run and how many results it
# prints. A listed suite that is missing (no binary, no run bit), a suite
# found but not listed, and a suite that printed another number of results
# than its plan (it died or hung half-way, or lost a test) are failures.
# A file that other suites source is listed with "-" instead of a number.
# Each suite's whole output is kept in build/test-logs/; a failing suite's
# log path and its last lines are printed.
set -u
cd "$(dirname "$0")/.."
export SBX_BUILD=${SBX_BUILD:-build}
export CMOCKA_MESSAGE_OUTPUT=TAP
PLAN=tests/plan
LOGS=$SBX_BUILD/test-logs
mkdir -p "$LOGS"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

result() { # LINE: a result of run.sh itself
	echo "$1" | tee -a "$log"
}

# planned GROUP: the suites of GROUP in tests/plan, as "name count" lines.
planned() {
	awk -v g="$1" '$1 == g { print $2, $3 }' "$PLAN"
}

run_suite() { # label want command...
	local label=$1 want=$2 out status got
	shift 2
	echo "# $label"
	out=$LOGS/$(echo "$label" | tr ' :/[]' '_____').log
	"$@" </dev/null >"$out" 2>&1
	status=$?
	grep -E '^(not ok|ok)|^#|^Bail' "$out" || true
	grep -E '^(not ok|ok)' "$out" >>"$log"
	got=$(grep -cE '^(not ok|ok)' "$out")
	# A suite that dies (a crash, a bail-out) without saying which test
	# failed still counts as a failure.
	if [ $status -ne 0 ] && ! grep -v '# SKIP' "$out" | grep -q '^not ok'; then
		result "not ok - $label: exited with status $status"
	fi
	if [ "$got" -ne "$want" ]; then
		result "not ok - $label: printed $got results, its plan ($PLAN) says $want"
	fi
	if [ $status -ne 0 ] || [ "$got" -ne "$want" ] || grep -v '# SKIP' "$out" | grep -q '^not ok'; then
		echo "#   full log: $out; its last lines:"
		tail -n 15 "$out" | sed 's/^/#   | /'
	fi
}

# check_unlisted GROUP FILE...: every suite file must be in the plan.
check_unlisted() {
	local group=$1 f name
	shift
	for f in "$@"; do
		[ -e "$f" ] || continue
		name=$(basename "$f" .sh)
		planned "$group" | grep -q "^$name " ||
			result "not ok - $group: $name is not in $PLAN (add it with its number of results)"
	done
}

for group in "$@"; do
	case $group in
	unit)
		check_unlisted unit $(ls -d "$SBX_BUILD"/tests/test_* 2>/dev/null | grep -v '\.d$')
		while read -r name want; do
			t=$SBX_BUILD/tests/$name
			if [ -x "$t" ]; then
				run_suite "unit: $name" "$want" "$t"
			else
				result "not ok - unit: $name: $t is missing or not executable"
			fi
		done < <(planned unit)
		;;
	integration | system)
		check_unlisted "$group" tests/"$group"/*.sh
		while read -r name want; do
			t=tests/$group/$name.sh
			if [ "$want" == - ]; then
				continue # sourced by the suites, not one itself
			elif [ -x "$t" ]; then
				run_suite "$group: $name" "$want" timeout 1800 "$t"
			else
				result "not ok - $group: $name: $t is missing or not executable"
			fi
		done < <(planned "$group")
		;;
	sdk)
		# sbx serve with real VMs: the unmodified @deno/sandbox SDK
		# (tests/sdk/run.sh: "sdk" under Node's test runner, "sdk-deno" the
		# same files under Deno), and any other suite a folder with its
		# run.sh (tests/dashboard: the dashboard in Chromium).
		while read -r name want; do
			if [ "$name" = sdk ] || [ "$name" = sdk-deno ]; then
				run_suite "sdk: $name" "$want" timeout 1800 tests/sdk/run.sh "$name"
			elif [ -x "tests/$name/run.sh" ]; then
				run_suite "sdk: $name" "$want" timeout 1800 "tests/$name/run.sh"
			else
				result "not ok - sdk: $name: tests/$name/run.sh is missing or not executable"
			fi
		done < <(planned sdk)
		;;
	fuzz)
		while read -r name want; do
			run_suite "fuzz: every target briefly" "$want" timeout 1800 tests/fuzz/run.sh
		done < <(planned fuzz)
		;;
	*)
		echo "unknown suite: $group" >&2
		exit 2
		;;
	esac
done

# cmocka writes a skipped test as "not ok N # SKIP name".
skip_re='^(not )?ok.*# SKIP'
skipped=$(grep -cE "$skip_re" "$log")
passed=$(grep -vE "$skip_re" "$log" | grep -c '^ok')
failed=$(grep -vE "$skip_re" "$log" | grep -c '^not ok')
if [ "$failed" -gt 0 ]; then
	echo "# failed (full logs in $LOGS/):"
	grep -vE "$skip_re" "$log" | grep '^not ok' | sed 's/^/#   /'
fi
if [ "$skipped" -gt 0 ]; then
	echo "# skipped:"
	grep -E "$skip_re" "$log" | sed -E 's/^(not )?ok( [0-9]+)?( -)? /#   /'
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
