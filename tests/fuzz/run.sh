#!/bin/bash
# Runs every libFuzzer target (tests/fuzz/fuzz_*.c, built as
# build/fuzz/fuzz_* by `make fuzz-build`) for
# FUZZ_TIME seconds each (default 5, the CI run; `make fuzz` sets 60) on
# its seed corpus (tests/fuzz/corpus/<target>, which also holds every
# input that once crashed). Prints "ok - fuzz: <target> (<N> execs)", or
# "not ok" with the sanitizer's summary when a target crashes, leaks, hangs
# (10 s for one input) or trips a check; the input is kept in
# build/fuzz/crashes/<target>/.
#   tests/fuzz/run.sh [TARGET...]
set -u
cd "$(dirname "$0")/../.."
FUZZ_DIR=${FUZZ_DIR:-build/fuzz}
FUZZ_TIME=${FUZZ_TIME:-5}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in tests/fuzz/fuzz_*.c; do
		t=${f#tests/fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi
work=$(mktemp -d /tmp/sbx-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

for t in "${targets[@]}"; do
	bin=$FUZZ_DIR/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "not ok - fuzz: $t (not built: make fuzz-build)"
		continue
	fi
	crashes=$FUZZ_DIR/crashes/$t
	mkdir -p "$crashes" "$work/$t"
	# New inputs go to the scratch directory (the first one given); the
	# seeds in the repository are only read.
	mkdir -p "tests/fuzz/corpus/$t"
	"$bin" -max_total_time="$FUZZ_TIME" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$crashes/" "$work/$t" "tests/fuzz/corpus/$t" \
		>"$work/$t.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
	if [ $rc -eq 0 ] && grep -q '^Done [0-9]* runs' "$work/$t.log"; then
		echo "ok - fuzz: $t (${execs:-?} execs in ${FUZZ_TIME} s)"
	else
		echo "not ok - fuzz: $t (exit $rc after ${execs:-?} execs)"
		grep -E 'ERROR:|SUMMARY:|check failed|^fuzz:|^    #[0-9]' "$work/$t.log" | head -20 |
			sed 's/^/#   /'
		ls -t "$crashes" 2>/dev/null | head -1 | sed "s|^|#   input: $crashes/|"
	fi
done
