#!/bin/bash
# The project's own install scripts, with stand-ins for the package tools
# on PATH (nothing is installed): scripts/deps.sh waits while another apt
# holds its lock, and gives up after a bounded time saying why.
. "$(dirname "$0")/../lib.sh"

FAKE=$T_TMP/bin
mkdir -p "$FAKE"
# Every package looks missing; apt-get fails with apt's lock message for
# the first $LOCKED calls (counted in a file), then succeeds.
cat >"$FAKE/dpkg-query" <<'EOT'
#!/bin/sh
exit 1
EOT
cat >"$FAKE/apt-get" <<'EOT'
#!/bin/sh
n=$(cat "$COUNT" 2>/dev/null || echo 0)
echo $((n + 1)) >"$COUNT"
if [ "$n" -lt "$LOCKED" ]; then
	echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
	exit 100
fi
echo "apt-get $*"
EOT
chmod +x "$FAKE/dpkg-query" "$FAKE/apt-get"

test_waits_for_lock() {
	local out
	out=$(PATH=$FAKE:$PATH COUNT=$T_TMP/n1 LOCKED=2 SBX_APT_POLL=1 "$ROOT/scripts/deps.sh" 2>&1) ||
		fail "deps.sh failed: $out" || return 1
	[[ $out == *"holds its lock"*"waiting"* ]] || fail "it did not say it waits: $out" || return 1
	[[ $out == *"apt-get install"* ]] || fail "it did not install: $out"
}

test_gives_up() {
	local out
	out=$(PATH=$FAKE:$PATH COUNT=$T_TMP/n2 LOCKED=1000 SBX_APT_POLL=1 SBX_APT_WAIT=1 \
		"$ROOT/scripts/deps.sh" 2>&1) && { fail "deps.sh succeeded: $out"; return 1; }
	[[ $out == *"still holds its lock after"*"giving up"* ]] || fail "it said: $out"
}

t "deps.sh waits while another apt holds the lock" test_waits_for_lock
t "deps.sh gives up after SBX_APT_WAIT, saying why" test_gives_up
