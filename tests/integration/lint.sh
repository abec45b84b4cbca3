#!/bin/bash
# Lints of the test suites themselves: shapes of shell that make a check
# unable to fail.
#  - `X && fail MSG && return 1`: `fail` returns 1, so `return 1` never
#    runs and, unless this is the function's last line, the test goes on
#    and may pass. Write `X && { fail MSG; return 1; }` or `! X || fail MSG`.
#  - a hostile or restart driver whose status is thrown away with
#    `|| echo`: a crash of the driver would pass unnoticed.
. "$(dirname "$0")/../lib.sh"

# suite_files: every shell file of the test suites and benchmarks, this
# one excepted (it names the patterns).
suite_files() {
	find "$ROOT/tests" "$ROOT/bench" -name '*.sh' -type f ! -name lint.sh | sort
}

# grep_suites REGEX: "file: text" of every code line that matches, with a
# line ending in || or && joined to the next one; "" when none.
grep_suites() {
	local f
	for f in $(suite_files); do
		sed -e ':a' -e '/\(||\|&&\)[[:space:]]*$/{N;s/\n[[:space:]]*/ /;ba' -e '}' "$f" |
			grep -vE '^[[:space:]]*#' | grep -E "$1" | sed "s|^|${f#$ROOT/}: |"
	done
}

test_no_fail_and_return() {
	local hits
	hits=$(grep_suites '(^|[^_[:alnum:]])fail([[:space:]].*)?&&[[:space:]]*return')
	[ -z "$hits" ] || fail "fail … && return never returns: $hits"
}

test_no_ignored_driver() {
	local hits
	hits=$(grep_suites '"\$(HOSTILE|TOOLS/sbx-[a-z]+)"[^|]*\|\|[[:space:]]*(echo|true|:)')
	[ -z "$hits" ] || fail "a driver's status is thrown away: $hits"
}

# The lint itself must catch what it is for.
test_lint_catches() {
	local f=$T_TMP/bad.sh out
	printf 'x() {\n\tfalse && fail "bad" && return 1\n\ttrue\n}\n' >"$f"
	out=$(grep -nE '(^|[^_[:alnum:]])fail([[:space:]].*)?&&[[:space:]]*return' "$f")
	[ -n "$out" ] || fail "the pattern did not match a known bad line"
}

t "the lint catches 'fail … && return'" test_lint_catches
t "no 'X && fail … && return 1' in the suites (it cannot fail)" test_no_fail_and_return
t "no driver status thrown away with || echo" test_no_ignored_driver
