# bench/lib.sh: what the benchmark scripts that boot their own sandboxes
# share. Sourced from the top of the tree, after `set -eu`;
# `bench_sandboxes NAME` sets B and SBX (the build), KV (BENCH_KV, where
# figures go as key=value lines), TMP (a temporary directory holding
# SBX_STATE_DIR and SBX_DATA_DIR, exported), and at exit kills every
# sandbox of that state directory, removes its templates (and so their
# spares) and removes TMP. say and now_ns are for
# the script's messages and timings.

bench_sandboxes() { # NAME: the script's name, in its messages
	BENCH_NAME=$1
	B=$(realpath "${SBX_BUILD:-build}")
	SBX=$B/sbx
	KV=${BENCH_KV:-/dev/null}
	TMP=$(mktemp -d "/tmp/sbx-$1.XXXXXX")
	export SBX_STATE_DIR=$TMP/state SBX_DATA_DIR=$TMP/data
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local d t
	# (|| true: under set -e a failure here would end the cleanup; a
	# template's spare is a directory that kill answers "no such sandbox")
	for d in "$SBX_STATE_DIR"/*/; do
		[ -d "$d" ] && "$SBX" kill "$(basename "$d")" >/dev/null 2>&1 || true
	done
	# templates' spares (launcher/spare.h), which kill does not reach
	for t in "$SBX_DATA_DIR"/templates/*/; do
		[ -d "$t" ] && "$SBX" template rm "$(basename "$t")" >/dev/null 2>&1 || true
	done
	rm -rf "$TMP"
}

say() { echo "bench/$BENCH_NAME.sh: $*" >&2; }
now_ns() { date +%s%N; }

# serve_port LOG: the port of an `sbx serve --listen 127.0.0.1:0` whose
# output goes to LOG, once it says it listens (up to 10 s); otherwise an
# error naming the script, with the log, and status 1.
serve_port() {
	local port= i

	for i in $(seq 100); do
		port=$(sed -n 's|^sbx serve: listening on http://127.0.0.1:\([0-9]*\) .*|\1|p' "$1")
		[ -n "$port" ] && { echo "$port"; return 0; }
		sleep 0.1
	done
	echo "$0: sbx serve did not start: $(cat "$1")" >&2
	return 1
}
