# tests/serve_runner.sh: what the runners that drive a real `sbx serve`
# share (tests/sdk/run.sh, tests/dashboard/run.sh): the checks and npm ci
# of a Node suite, a temporary state and data directory, servers started
# on port 0 and waited for, and at exit every server stopped and every
# sandbox of that state directory killed. Sourced by bash after `set -u`;
# the runner's TAP output ("Bail out!", "not ok") is written here too.
# serve_init NAME sets here (the runner's folder), root, build, sbx and
# tmp (its SBX_STATE_DIR and SBX_DATA_DIR exported).

bail() {
	echo "Bail out! $*"
	exit 1
}

serve_init() { # NAME: the runner's folder under tests/, for messages and mktemp
	here=$root/tests/$1
	build=$root/${SBX_BUILD:-build}
	sbx=$build/sbx
	serve_pids=()
	[ -x "$sbx" ] || bail "$sbx is missing (make)"
	command -v node >/dev/null && command -v npm >/dev/null || bail "node and npm are needed (scripts/deps.sh)"
	cd "$here" || bail "no $here"
	if [ ! -e node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
		npm ci --no-audit --no-fund >&2 || bail "npm ci failed in tests/$1"
	fi
	tmp=$(mktemp -d "/tmp/sbx-$1.XXXXXX") || bail "mktemp"
	export SBX_STATE_DIR=$tmp/state SBX_DATA_DIR=$tmp/data
	mkdir -p "$SBX_STATE_DIR" "$SBX_DATA_DIR"
	trap serve_cleanup EXIT
}

serve_cleanup() {
	local pid id
	for pid in "${serve_pids[@]}"; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for id in $(ls "$SBX_STATE_DIR" 2>/dev/null); do
		[ -e "$SBX_STATE_DIR/$id/meta" ] && "$sbx" kill "$id" >/dev/null 2>&1
	done
	rm -rf "$tmp"
}

# serve_start VAR LOG SCHEME ARGS...: starts `sbx serve ARGS...` (which
# listen on 127.0.0.1:0) with its output in LOG, and sets VAR to the port
# it says it listens on (SCHEME: http or https), waiting up to 10 s while
# it is alive; bails out with its log otherwise. The server's pid is
# ${serve_pids[-1]}.
serve_start() {
	# Locals prefixed: VAR may be any name, "port" too.
	local _var=$1 _log=$2 _scheme=$3 _pid _port= _i
	shift 3
	: >"$_log"
	"$sbx" serve "$@" >"$_log" 2>&1 &
	_pid=$!
	serve_pids+=("$_pid")
	for _i in $(seq 100); do
		_port=$(sed -n "s|^sbx serve: listening on $_scheme://127.0.0.1:\([0-9]*\) .*|\1|p" "$_log")
		[ -n "$_port" ] && break
		kill -0 "$_pid" 2>/dev/null || break
		sleep 0.1
	done
	[ -n "$_port" ] || bail "sbx serve$([ "$_scheme" = https ] && echo ' over TLS') did not start: $(cat "$_log")"
	printf -v "$_var" %s "$_port"
}

# serve_finish STATUS LOG: the suite's status, failed too if the first
# server died during the tests; LOG's last lines as TAP comments.
serve_finish() {
	local status=$1
	if ! kill -0 "${serve_pids[0]}" 2>/dev/null; then
		echo "not ok - sbx serve died during the tests"
		status=1
	fi
	echo "# sbx serve's log:"
	sed 's/^/#   /' "$2" | tail -n 40
	exit "$status"
}
