#!/bin/bash
# make bench: every benchmark in one run on this machine, against its
# baseline and the peers (qemu-ga, OpenSSH, dropbear, socat), measured
# alternately in the same run; writes bench/results.md (everything) and
# bench/summary.md (the short table for the README's Performance section).
# Why only ratios from one run count here: ../shared/BENCH.md.
#
# Sections (BENCH_SECTIONS, default all, in this order):
#   exec       /bin/true round trip: fork+exec+wait, sbx, qemu-ga, ssh (new
#              connection, ControlMaster), dropbear      (bench/sbx-bench.c)
#   streams    stdout and stdin of BYTES through sbx vs a plain Unix socket
#   files      bench/fs.sh (sbx upload/download, scp) and qemu-ga's file calls
#   net        bench/net.sh (port forwarding vs loopback TCP, socat, ssh -L)
#   egress     bench/egress.sh (the egress gateway vs going direct), if present
#   secrets    bench/secrets.sh (HTTPS through the substituting gateway vs the plain one)
#   restart    bench/restart.sh (server killed -> next exec)
#   profile    bench/profile.sh (where the agent's time goes: CPU time and
#              context switches per exec, seccomp on/off, stdin's syscalls)
#   footprint  bench/footprint.sh (memory at rest and with N commands; sizes)
#   vm         bench/vm.sh (boot, exec and throughput over vsock under QEMU)
#   memory     bench/memory.sh (host memory per idle sandbox, memory given back)
#   oci        bench/oci.sh (podman run --rm … true and an idle container's
#              host memory through sbx-oci vs runc)
#   template   bench/template.sh (create -> ready: cold boot vs from a template)
#   density    bench/density.sh (idle sandboxes in 8 GiB of host memory)
#   sdk        bench/sdk.sh (the @deno/sandbox SDK through sbx serve vs the
#              CLI: sh of true, fs.upload/download, create -> first command)
#   dashboard  bench/dashboard.sh (sbx serve's dashboard in Chromium: first
#              paint of a 100-sandbox list; the server's CPU idle vs watched)
#
# Environment (defaults; BENCH_QUICK=1 makes every size small, to check the
# scripts in a few minutes, and writes to build/bench-quick/ instead):
#   EXEC_N=2000 EXEC_SSH_N=1000 QGA_POLL_US=0 STREAM_BYTES=1G STREAM_RUNS=5
#   FS_BYTES=1G FS_RUNS=3 QGA_FS_BYTES=256M QGA_FS_RUNS=2 QGA_FS_CHUNK=64K
#   NET_BYTES NET_RUNS NET_RR_N NET_CONN_N (bench/net.sh's), EGRESS_* (bench/
#   egress.sh's) RESTART_N=20
#   FOOT_N="100 1000" FOOT_SSH_N=100 VM_BOOTS=5 VM_EXEC_N=1000 VM_BLOCKS=10
#   VM_BYTES=256M VM_RUNS=3 IMG_BOOTS=5 IMG_IDLE_S=10 MEM_N=3 DENSITY_MAX=12 PROF_N=1000
#   PROF_STDIN_BYTES=256M; TMPL_N=5, TMPL_BASE unset (bench/template.sh: another
#   build directory to run interleaved, an A/B);
#   OCI_RUNS=5 OCI_SETTLE_S=5 (bench/oci.sh);
#   SDK_EXEC_N=100 SDK_FS_MIB=256 SDK_FS_RUNS=3 SDK_BOOT_RUNS=3 (bench/sdk.sh);
#   DASH_N=100 DASH_RUNS=5 DASH_PAGES=10 DASH_WINDOW_S=30 (bench/dashboard.sh);
#   BENCH_OUT=DIR (where results.md and summary.md go)
set -eu
cd "$(dirname "$0")/.."
B=${SBX_BUILD:-build}
export SBX_BUILD=$B
# The figures of the microVM tables are the minimal image's (busybox in
# the initramfs), as before Debian became sbx's default.
export SBX_IMAGE=minimal
if [ -n "${BENCH_QUICK:-}" ]; then
	: "${EXEC_N:=200}" "${EXEC_SSH_N:=20}" "${STREAM_BYTES:=64M}" "${STREAM_RUNS:=1}"
	: "${FS_BYTES:=64M}" "${FS_RUNS:=1}" "${QGA_FS_BYTES:=16M}" "${QGA_FS_RUNS:=1}"
	: "${NET_BYTES:=67108864}" "${NET_RUNS:=1}" "${NET_RR_N:=200}" "${NET_CONN_N:=50}"
	: "${RESTART_N:=3}" "${FOOT_N:=10 50}" "${FOOT_SSH_N:=8}" "${PROF_N:=100}" "${PROF_STDIN_BYTES:=32M}"
	: "${EGRESS_BYTES:=16777216}" "${EGRESS_RUNS:=1}" "${EGRESS_CONN_N:=20}"
	: "${EGRESS_VM_BYTES:=4194304}" "${EGRESS_VM_RUNS:=1}" "${EGRESS_VM_CONN_N:=3}"
	: "${MEM_N:=1}" "${TMPL_N:=1}" "${DENSITY_MAX:=3}" "${VM_BOOTS:=1}" "${VM_EXEC_N:=40}" "${VM_BLOCKS:=2}" "${VM_BYTES:=16M}" "${VM_RUNS:=1}"
	: "${OCI_RUNS:=2}" "${OCI_SETTLE_S:=2}"
	: "${SDK_EXEC_N:=10}" "${SDK_FS_MIB:=16}" "${SDK_FS_RUNS:=1}" "${SDK_BOOT_RUNS:=1}"
	: "${DASH_RUNS:=2}" "${DASH_WINDOW_S:=5}"
	: "${BENCH_OUT:=$B/bench-quick}"
fi
EXEC_N=${EXEC_N:-2000}
EXEC_SSH_N=${EXEC_SSH_N:-1000}
QGA_POLL_US=${QGA_POLL_US:-0}
STREAM_BYTES=${STREAM_BYTES:-1G}
STREAM_RUNS=${STREAM_RUNS:-5}
QGA_FS_BYTES=${QGA_FS_BYTES:-256M}
QGA_FS_RUNS=${QGA_FS_RUNS:-2}
QGA_FS_CHUNK=${QGA_FS_CHUNK:-64K}
RESTART_N=${RESTART_N:-20}
FS_BYTES=${FS_BYTES:-1G}
FS_RUNS=${FS_RUNS:-3}
FOOT_N=${FOOT_N:-100 1000}
FOOT_SSH_N=${FOOT_SSH_N:-100}
VM_BOOTS=${VM_BOOTS:-5}
VM_EXEC_N=${VM_EXEC_N:-1000}
VM_BLOCKS=${VM_BLOCKS:-10}
VM_BYTES=${VM_BYTES:-256M}
VM_RUNS=${VM_RUNS:-3}
MEM_N=${MEM_N:-3}
SECTIONS=${BENCH_SECTIONS:-exec streams files net egress secrets restart profile footprint vm memory oci template density sdk dashboard}
OUTDIR=${BENCH_OUT:-bench}
export FS_BYTES FS_RUNS NET_BYTES NET_RUNS NET_RR_N NET_CONN_N FOOT_N FOOT_SSH_N
export MEM_N DENSITY_MAX=${DENSITY_MAX:-12} VM_BOOTS VM_EXEC_N VM_BLOCKS VM_BYTES VM_RUNS PROF_N PROF_STDIN_BYTES
export SDK_EXEC_N=${SDK_EXEC_N:-100} SDK_FS_MIB=${SDK_FS_MIB:-256} SDK_FS_RUNS=${SDK_FS_RUNS:-3}
export SDK_BOOT_RUNS=${SDK_BOOT_RUNS:-3} TMPL_N=${TMPL_N:-5}
export DASH_N=${DASH_N:-100} DASH_RUNS=${DASH_RUNS:-5} DASH_PAGES=${DASH_PAGES:-10} DASH_WINDOW_S=${DASH_WINDOW_S:-30}
export OCI_RUNS=${OCI_RUNS:-5} OCI_SETTLE_S=${OCI_SETTLE_S:-5}
export EGRESS_BYTES EGRESS_RUNS EGRESS_CONN_N EGRESS_VM_BYTES EGRESS_VM_RUNS EGRESS_VM_CONN_N
mkdir -p "$OUTDIR"
OUT=$OUTDIR/results.md
SUM=$OUTDIR/summary.md

TMP=$(mktemp -d /tmp/sbx-bench.XXXXXX)
export BENCH_KV=$TMP/kv
: >"$BENCH_KV"
. bench/peers.sh
AGENT=
cleanup() {
	[ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null
	peers_stop
	wait 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT
say() { echo "bench: $*" >&2; }

load() { cut -d' ' -f1-3 /proc/loadavg; }
busy() { # the three busiest other processes right now
	ps -e -o pcpu=,comm= --sort=-pcpu | awk '$1 > 5 { printf "%s%s %s%%", n++ ? ", " : "", $2, $1 } n == 3 { exit }'
}

# A section's output goes to $TMP/<name>.md; a section that fails leaves a
# note naming why instead of stopping the run.
section() { # name title command...
	local name=$1 title=$2 t0 rc=0
	shift 2
	case " $SECTIONS " in *" $name "*) ;; *) return 0 ;; esac
	say "$title (load $(load))"
	t0=$(date +%s)
	{
		echo "## $title"
		echo
		"$@" 2> >(tee "$TMP/$name.err" >&2) || rc=$?
		echo
		if [ $rc != 0 ]; then
			echo "**This section failed** (exit status $rc):"
			echo
			echo '```'
			tail -n 15 "$TMP/$name.err"
			echo '```'
			echo
		fi
		echo "_$(($(date +%s) - t0)) s; load average before: $LOAD_BEFORE, after: $(load)._"
		echo
	} >"$TMP/$name.md"
	[ $rc = 0 ] || say "$name failed: $(tail -n 3 "$TMP/$name.err")"
	grep '^|' "$TMP/$name.md" >&2 || true
}

start_agent() {
	"$B/sbx-init" --listen "unix:$TMP/agent.sock" >"$TMP/agent.log" 2>&1 &
	AGENT=$!
	for _ in $(seq 100); do [ -S "$TMP/agent.sock" ] && break; sleep 0.05; done
	ADDR=unix:$TMP/agent.sock
	"$B/sbx" --connect "$ADDR" exec true
}

# ---- the sections -------------------------------------------------------------

EXEC_HEAD="| measurement | side | N | median | p99 | ratio to the floor (pairs: median, p99); to sbx |
|---|---|---|---|---|---|"
STREAM_HEAD="| measurement | side | N | median | range | ratio to the baseline (pairs) |
|---|---|---|---|---|---|"

sec_exec() {
	local sides=() s
	echo "Clients in-process where the peer allows: sbx through libsbx, one connection per"
	echo "command as always; qemu-ga through a C client of its JSON protocol (bench/qga.c) on"
	echo "one connection synchronised once with guest-sync, polling guest-exec-status"
	echo "$([ "$QGA_POLL_US" = 0 ] && echo "back to back (no sleep: its best case)" || echo "every $QGA_POLL_US µs")."
	echo "SSH has no in-process client: every SSH sample is a whole \`ssh\` client run (start-up,"
	echo "connection or mux socket, session, \`bash -c /bin/true\` as the login shell on the"
	echo "server side, with an empty HOME), so the row \`ssh -V\` gives the client's start-up"
	echo "alone. Key exchange: \`KexAlgorithms=$PEER_KEX\`, Ed25519 host and user keys, OpenSSH's"
	echo "default cipher; dropbear is reached with the same OpenSSH client. The sides take turns"
	echo "within each round (the order reversed every other round); the SSH sides run in"
	echo "$EXEC_SSH_N of the $EXEC_N rounds, spread evenly."
	echo
	echo "$EXEC_HEAD"
	printf -v s '%s\x1f' qga "$QGA_SOCK" "$QGA_POLL_US"
	sides+=("${s%$'\x1f'}")
	add_cmd() { # label argv...
		local spec
		printf -v spec '%s\x1f' cmd "$EXEC_SSH_N" "$@"
		sides+=("${spec%$'\x1f'}")
	}
	add_cmd "OpenSSH, multiplexed: \`ssh\` through a ControlMaster connection to sshd" \
		"${SSH_MUX_BASE[@]}" root@127.0.0.1 /bin/true
	add_cmd "OpenSSH, a new connection: \`ssh root@127.0.0.1 /bin/true\` to sshd" \
		"${SSH_BASE[@]}" -p "$SSHD_PORT" root@127.0.0.1 /bin/true
	add_cmd "dropbear, a new connection (OpenSSH's \`ssh\` client)" \
		"${SSH_BASE[@]}" -p "$DROPBEAR_PORT" root@127.0.0.1 /bin/true
	add_cmd "(the ssh client's start-up alone: \`ssh -V\`)" ssh -V
	HOME=$SSH_HOME "$B/sbx-bench" exec "$ADDR" "$EXEC_N" "${sides[@]}"
}

sec_streams() {
	echo "The same command (\`head -c\`) writes its stdout into, or reads its stdin from, a"
	echo "plain Unix socket (the baseline) or runs through sbx (libsbx in-process, 256 KiB"
	echo "STDIN frames); the ceiling is 1 MiB writes from memory into a Unix socket."
	echo
	echo "$STREAM_HEAD"
	"$B/sbx-bench" stdout "$ADDR" "$STREAM_BYTES" "$STREAM_RUNS"
	"$B/sbx-bench" stdin "$ADDR" "$STREAM_BYTES" "$STREAM_RUNS"
}

sec_files() {
	local d
	echo "bench/fs.sh: sbx uploads and downloads (libsbx) against the same bytes copied"
	echo "file → plain Unix socket → new file, and scp over loopback; then the QEMU guest"
	echo "agent's file calls (guest-file-open/write/read/close: base64 in JSON, one call per"
	echo "$QGA_FS_CHUNK) against the same baseline, with $QGA_FS_BYTES (qemu-ga runs at tens of MB/s)."
	echo
	echo "$STREAM_HEAD"
	bench/fs.sh "$ADDR"
	d=$(mktemp -d /dev/shm/sbx-bench-qga.XXXXXX)
	head -c "$QGA_FS_BYTES" /dev/urandom >"$d/src"
	"$B/sbx-bench" qga-fs "$QGA_SOCK" "$d/src" "$d" "$QGA_FS_RUNS" "$QGA_FS_CHUNK" || {
		rm -rf "$d"
		return 1
	}
	rm -rf "$d"
}

sec_net() {
	if [ ! -x bench/net.sh ]; then
		echo "bench/net.sh is not there yet: no port forwarding figures in this run."
		return 0
	fi
	echo "bench/net.sh: a loopback TCP service reached directly and through relays"
	echo "(sbx FORWARD through the agent, socat -b 262144, ssh -L), alternated."
	echo
	echo "$STREAM_HEAD"
	bench/net.sh "$ADDR"
}

sec_egress() {
	if [ ! -x bench/egress.sh ]; then
		echo "bench/egress.sh is not there: no egress figures in this run."
		return 0
	fi
	echo "bench/egress.sh: the egress gateway against the same client going direct (see that"
	echo "script for the sides), alternated."
	echo
	echo "$STREAM_HEAD"
	bench/egress.sh
}

sec_secrets() {
	echo "bench/secrets.sh: HTTPS through the gateway that substitutes secrets against the"
	echo "same client through the plain gateway, alternated (host side; see that script)."
	echo
	echo "$STREAM_HEAD"
	bench/secrets.sh
}

sec_restart() {
	local a rc=0
	echo "bench/restart.sh: the agent's server killed (SIGKILL) mid-command; time from the"
	echo "kill to the end of the next successful exec while PID 1 restarts it (its own agent)."
	echo
	echo "$STREAM_HEAD"
	"$B/sbx-init" --listen "unix:$TMP/restart.sock" >"$TMP/restart-agent.log" 2>&1 &
	a=$!
	for _ in $(seq 100); do [ -S "$TMP/restart.sock" ] && break; sleep 0.05; done
	bench/restart.sh "unix:$TMP/restart.sock" "$RESTART_N" || rc=$?
	kill "$a" 2>/dev/null
	wait "$a" 2>/dev/null || true
	return $rc
}

sec_profile() {
	echo "bench/profile.sh: software counters over the agent's whole process tree (this machine"
	echo "has no hardware counters for perf), an A/B run of the workload restrictions, and the"
	echo "server's system calls during a stdin transfer."
	echo
	bench/profile.sh
}

sec_footprint() {
	echo "A fresh agent and fresh peers, each having run one command, then holding N"
	echo "commands at once (\`sleep\`): sbx, one exec connection per command; qemu-ga, N"
	echo "guest-exec on its one connection; sshd and dropbear, one ssh connection per command."
	echo "Memory is summed over the agent's own processes (not the commands): RSS, and PSS"
	echo "(shared pages divided among their users); per command = growth over idle / N."
	echo
	bench/footprint.sh
}

sec_vm() {
	echo "Real microVMs booted by \`sbx create\` (QEMU $(qemu-system-x86_64 --version | awk '{print $4; exit}'), $(
		[ -w /dev/kvm ] && echo "KVM if usable, else TCG" || echo TCG), 1 vCPU, 1024 MiB,"
	echo "sbx-vsockd as the vsock device). See bench/vm.sh for what each side is."
	echo
	bench/vm.sh
	echo
	echo "bench/images.sh: the Debian image (the default) against the minimal one, booted"
	echo "alternately in the same run, and the host memory of one idle sandbox of each."
	echo
	bench/images.sh
}

sec_memory() {
	echo "The host memory a sandbox costs (\`sbx create\`, TCG, 1 vCPU, sbx-vsockd), from"
	echo "/proc/PID/smaps of its QEMU; and memory the guest frees coming back to the host"
	echo "(virtio-balloon free-page reporting). See bench/memory.sh."
	echo
	bench/memory.sh
}

sec_oci() {
	bench/oci.sh
}

sec_template() {
	echo "\`sbx create\` of a minimal sandbox booted cold against one restored from a"
	echo "template (\`sbx template create\`), alternately in the same run. See bench/template.sh."
	echo
	bench/template.sh
}

sec_density() {
	echo "How many idle sandboxes fit in 8 GiB of host memory: minimal sandboxes booted,"
	echo "then minimal clones of a template, one after another, the memory their QEMU and"
	echo "sbx-vsockd hold in the host summed. See bench/density.sh."
	echo
	bench/density.sh
}

sec_sdk() {
	bench/sdk.sh
}

sec_dashboard() {
	bench/dashboard.sh
}

# ---- run --------------------------------------------------------------------
LOAD_START=$(load)
BUSY_START=$(busy)
say "load average $LOAD_START${BUSY_START:+; busy: $BUSY_START}"
T_START=$(date +%s)
start_agent
peers_start "$TMP/peers"
peers_mux_start
LOAD_BEFORE=$(load)
section exec "Running a command" sec_exec
LOAD_BEFORE=$(load)
section streams "Output and input streams" sec_streams
LOAD_BEFORE=$(load)
section files "Files" sec_files
LOAD_BEFORE=$(load)
section net "Port forwarding" sec_net
LOAD_BEFORE=$(load)
section egress "Egress" sec_egress
LOAD_BEFORE=$(load)
section secrets "Secrets" sec_secrets
LOAD_BEFORE=$(load)
section restart "Restart of the agent's server" sec_restart
peers_stop
kill "$AGENT" 2>/dev/null
wait "$AGENT" 2>/dev/null || true
AGENT=
LOAD_BEFORE=$(load)
section profile "Where the agent's time goes" sec_profile
LOAD_BEFORE=$(load)
section footprint "Footprint" sec_footprint
LOAD_BEFORE=$(load)
section vm "In a VM under QEMU" sec_vm
LOAD_BEFORE=$(load)
section memory "Host memory per sandbox" sec_memory
LOAD_BEFORE=$(load)
section oci "Containers through sbx-oci (Podman) against runc" sec_oci
LOAD_BEFORE=$(load)
section template "Templates: create from a warm snapshot" sec_template
LOAD_BEFORE=$(load)
section density "Density" sec_density
section sdk "Through the @deno/sandbox SDK (sbx serve)" sec_sdk
LOAD_BEFORE=$(load)
section dashboard "The dashboard of sbx serve" sec_dashboard
T_END=$(date +%s)

# ---- results.md ---------------------------------------------------------------
{
	echo "# sbx benchmark results"
	echo
	echo "Produced by \`make bench\` (bench/run.sh) on $(date -u '+%Y-%m-%d %H:%M UTC') in"
	echo "$(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s: $(nproc) cores,"
	echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
	echo "$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)."
	echo "Load average at the start: $LOAD_START${BUSY_START:+ (busiest processes: $BUSY_START)};"
	echo "at the end: $(load). Other work on this shared machine moves absolute figures"
	echo "by tens of percent; the ratios, each taken pair by pair between sides that ran"
	echo "alternately in this run, are what to compare (../shared/BENCH.md)."
	echo
	echo "sbx: $(git describe --always --dirty 2>/dev/null || echo unknown), agent in development mode"
	echo "(\`sbx-init --listen unix:PATH\`) except in the VM section. Peers: $(peers_versions),"
	echo "all Debian packages, on loopback or a socket in a temp dir, stopped afterwards."
	echo "Sizes and counts: EXEC_N=$EXEC_N EXEC_SSH_N=$EXEC_SSH_N STREAM_BYTES=$STREAM_BYTES"
	echo "STREAM_RUNS=$STREAM_RUNS FS_BYTES=$FS_BYTES FS_RUNS=$FS_RUNS" \
		"QGA_FS_BYTES=$QGA_FS_BYTES RESTART_N=$RESTART_N FOOT_N=\"$FOOT_N\" FOOT_SSH_N=$FOOT_SSH_N"
	echo "MEM_N=$MEM_N VM_BOOTS=$VM_BOOTS VM_EXEC_N=$VM_EXEC_N VM_BYTES=$VM_BYTES" \
		"VM_RUNS=$VM_RUNS DENSITY_MAX=$DENSITY_MAX${BENCH_QUICK:+ (BENCH_QUICK: not for publishing)}."
	echo
	for s in exec streams files net egress secrets restart profile footprint vm memory oci template density sdk dashboard; do
		[ -e "$TMP/$s.md" ] && cat "$TMP/$s.md"
	done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"

# ---- summary.md ---------------------------------------------------------------
kv() { awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$BENCH_KV"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
us() { awk -v v="$1" 'BEGIN { printf(v >= 10000 ? "%.1f ms" : "%.0f µs", v >= 10000 ? v / 1000 : v) }'; }
row_exec() { # key label goal
	local n med p99 r rp rs
	read -r n med p99 r rp rs <<<"$(kv "$1")"
	[ -n "${n:-}" ] || return 0
	printf '| %s | %s | %s | %s | %s |\n' "$2" "$(us "$med")" "$(us "$p99")" \
		"$(printf '%.2f' "$r")" "$3"
}
{
	echo "Measured by \`make bench\` on $(date -u '+%Y-%m-%d'): $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo |
		cut -d: -f2 | sed 's/^ //')), Linux $(uname -r), load average $LOAD_START at the start."
	echo "Each ratio is taken pair by pair against a baseline measured alternately in the same run;"
	echo "the full table, the peers' settings and the machine are in bench/results.md."
	echo
	if [ -s "$TMP/exec.md" ]; then
		echo "| exec \`/bin/true\`, round trip (N=$EXEC_N; SSH N=$EXEC_SSH_N) | median | p99 | × fork+exec+wait | goal |"
		echo "|---|---|---|---|---|"
		row_exec floor "fork+exec+wait (the floor)" ""
		row_exec sbx "**sbx** (libsbx, Unix socket)" "≤ 1.3"
		row_exec qga "QEMU guest agent (guest-exec + status polls)" ""
		row_exec cmd1 "OpenSSH, ControlMaster (an \`ssh\` run each)" ""
		row_exec cmd2 "OpenSSH, new connection ($PEER_KEX)" ""
		row_exec cmd3 "dropbear, new connection" ""
		echo
	fi
	echo "| throughput | sbx | baseline | ratio | goal |"
	echo "|---|---|---|---|---|"
	for d in stdout stdin; do
		read -r n v b r rmin rmax <<<"$(kv $d)"
		[ -n "${n:-}" ] && echo "| $d of $STREAM_BYTES (N=$n) | $v MB/s | $b MB/s (the same command on a Unix socket) | $(printf '%.2f' "$r") | ≥ 0.7 |"
	done
	# bench/fs.sh's rows: | what | side | N | median | range | ratio (min, max) |
	awk -F'|' '(index($3, "sbx upload") || index($3, "sbx download")) && !index($3, "(pairs)") {
		for (i = 2; i <= 7; i++) gsub(/^ +| +$/, "", $i)
		split($7, r, " ")
		printf "| %s: %s (N=%s) | %s | file → plain Unix socket → new file | %s | ≥ 0.8 |\n",
			$2, index($3, "no digests") ? "no digests (`--no-verify`)" : "XXH3-verified, atomic",
			$4, $5, r[1]
	}' "$TMP/files.md" 2>/dev/null || true
	# and verified against unverified, pair by pair
	awk -F'|' 'index($3, "verified / no digests (pairs)") {
		for (i = 2; i <= 7; i++) gsub(/^ +| +$/, "", $i)
		split($7, r, " ")
		printf "| %s: XXH3-verified against no digests (N=%s) | | the same, `--no-verify` | %s | ≥ 0.8 |\n",
			$2, $4, r[1]
	}' "$TMP/files.md" 2>/dev/null || true
	# bench/fs_ends.c's rows: one end alone, verified against unverified
	awk -F'|' 'index($3, "verified (ratio: to the same end unverified") {
		for (i = 2; i <= 7; i++) gsub(/^ +| +$/, "", $i)
		split($7, r, " ")
		printf "| %s, XXH3-verified (N=%s) | %s | the same end, no digests | %s | ≥ 0.8 |\n",
			$2, $4, $5, r[1]
	}' "$TMP/files.md" 2>/dev/null || true
	# bench/net.sh's rows: | what | side | N | median | range | ratio (min-max) |
	awk -F'|' 'index($3, "sbx FORWARD") {
		for (i = 2; i <= 7; i++) gsub(/^ +| +$/, "", $i)
		split($7, r, " ")
		printf "| port forwarding: %s (N=%s) | %s | direct loopback TCP | %s | %s |\n",
			$2, $4, $5, r[1], index($2, "download") ? "≥ 0.8" : ""
	}' "$TMP/net.md" 2>/dev/null || true
	read -r up upr <<<"$(kv qga_up | awk '{ print $2, $3 }')"
	read -r down downr <<<"$(kv qga_down | awk '{ print $2, $3 }')"
	[ -n "${up:-}" ] && echo "| (QEMU guest agent's file calls: upload / download) | $up / $down MB/s | the same baseline | $upr / $downr | |"
	echo
	if [ -n "$(kv footprint.size_kib)" ]; then
		read -r p1 srv <<<"$(kv footprint.sbx_idle_rss_kib)"
		echo "| footprint | sbx | goal |"
		echo "|---|---|---|"
		echo "| sbx-init, static and stripped | $(kv footprint.size_kib) KiB | ≤ 400 KiB |"
		echo "| RSS idle: PID 1 / server | $p1 KiB / $srv KiB | ≤ 1 MiB each |"
		for n in $FOOT_N; do
			read -r rss pss _ r0 p0 <<<"$(kv "footprint.sbx_$n")"
			[ -n "${rss:-}" ] && echo "| RSS with $n exec connections (PID 1 + server) | $rss KiB: $(awk -v a="$rss" -v b="$r0" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }') KiB per connection | |"
		done
		for p in "qga_${FOOT_N##* }|qemu-ga, per running command" "sshd_$FOOT_SSH_N|sshd, per ssh connection" "dropbear_$FOOT_SSH_N|dropbear, per ssh connection"; do
			read -r rss pss _ r0 p0 <<<"$(kv "footprint.${p%%|*}")"
			[ -n "${rss:-}" ] && echo "| (${p#*|}: RSS / PSS growth) | $(awk -v a="$rss" -v b="$r0" -v c="$pss" -v d="$p0" -v n="${p%%|*}" 'BEGIN { sub(/.*_/, "", n); printf "%.1f / %.1f KiB", (a - b) / n, (c - d) / n }') | |"
		done
		echo
	fi
	if [ -n "$(kv vm.boot)" ]; then
		read -r n bm sm cm su dd <<<"$(kv vm.boot)"
		read -r hn hmed hp99 hmean gmean ratio cs <<<"$(kv vm.exec)"
		read -r up upraw down downraw guest upceil downceil upr downr <<<"$(kv vm.tput)"
		echo "| in a microVM under QEMU (TCG, 1 vCPU) | sbx | baseline | ratio / difference | goal |"
		echo "|---|---|---|---|---|"
		echo "| boot to ready, median of $n | $sm ms (QEMU start → READY) | $bm ms (QEMU start → exit, /init powers off) | +$dd ms | |"
		echo "| agent start-up in the guest (less module loading) | $(printf '%.1f' "$su") ms | | | ≤ 20 ms |"
		echo "| exec round trip over vsock (mean of $hn; guest clock: $cs) | $(awk -v v="$hmean" 'BEGIN { printf "%.1f", v / 1000 }') ms | $(awk -v v="$gmean" 'BEGIN { printf "%.1f", v / 1000 }') ms (same client in the guest, Unix socket) | $(printf '%.2f' "$ratio") | |"
		echo "| host → guest through sbx-vsockd, $VM_BYTES | $up MB/s | $upraw MB/s (same command on raw vsock) | $(printf '%.2f' "$upr") | |"
		echo "| guest → host through sbx-vsockd, $VM_BYTES | $down MB/s | $downraw MB/s (same command on raw vsock) | $(printf '%.2f' "$downr") | |"
		read -r direct directr <<<"$(kv vm.tput_direct)"
		if [ -n "${direct:-}" ]; then
			echo "| guest → host, \`sbx exec --direct-stdout\`, $VM_BYTES | $direct MB/s | $downraw MB/s (same command on raw vsock) | $(printf '%.2f' "$directr") | ≥ 0.8 |"
		fi
	fi
	if [ -n "$(kv vm.images)" ]; then
		read -r n mmed dmed ratio mr dr <<<"$(kv vm.images)"
		echo "| \`sbx create\` → ready, Debian image (median of $n) | $dmed ms | $mmed ms (minimal image) | $ratio | ≤ 1.15 |"
		echo "| host RSS of an idle sandbox (QEMU + sbx-vsockd), Debian | $(awk -v k="$dr" 'BEGIN { printf "%.0f", k / 1024 }') MiB | $(awk -v k="$mr" 'BEGIN { printf "%.0f", k / 1024 }') MiB (minimal image) | | |"
	fi
	if [ -n "$(kv tmpl.create)" ]; then
		read -r n cm wm ratio make_ms size ram sm sratio <<<"$(kv tmpl.create)"
		[ -n "$(kv vm.boot)" ] || { echo "| templates (TCG, 1 vCPU) | sbx | baseline | ratio | goal |"; echo "|---|---|---|---|---|"; }
		echo "| \`sbx create\` → ready from a template, minimal (median of $n pairs) | $wm ms | $cm ms (\`--cold\`, same run) | $(printf '%.3f' "$ratio") | ≤ 0.1 |"
		[ -n "${sratio:-}" ] && echo "| the same, a spare waiting (\`template create --spares 1\`) | $sm ms | $cm ms | $(printf '%.3f' "$sratio") | ≤ 0.1 |"
	fi
	if [ -n "$(kv mem.idle.minimal)" ]; then
		echo
		echo "| host memory per sandbox ($MEM_N each, 1024 MiB) | QEMU RSS | of which guest RAM / TCG buffer / rest | goal |"
		echo "|---|---|---|---|"
		for img in minimal debian; do
			read -r n r p m tc rest v <<<"$(kv "mem.idle.$img")"
			[ -n "${r:-}" ] && echo "| idle $img sandbox (+ sbx-vsockd $(mib "$v") MiB) | $(mib "$r") MiB | $(mib "$m") / $(mib "$tc") / $(mib "$rest") MiB | $([ $img = minimal ] && echo "≤ 96 MiB") |"
		done
		read -r before peak after ms <<<"$(kv mem.give)"
		[ -n "${ms:-}" ] && echo "| 400 MB allocated and freed in the guest | $(mib "$before") → $(mib "$peak") → $(mib "$after") MiB, back in $ms ms | | within 10% in ≤ 10 s |"
		for m in 768 2048; do
			read -r n c p sz r <<<"$(kv "mem.pause.$m")"
			[ -n "${r:-}" ] && echo "| pause / resume, idle minimal, $m MiB (\`--pausable\`, -M pc) | $p ms / $r ms | state $(awk -v b="$sz" 'BEGIN { printf "%.0f MB", b / 1e6 }'); create → ready $c ms | |"
		done
	fi
	for img in minimal debian; do
		for at in "${MEM_LATE_S:-15}" exec; do
			read -r n r p m tc rest a host v c <<<"$(kv "mem.clone.$img.$at")"
			[ -n "${c:-}" ] && echo "| $img clone (from a template), $([ "$at" = exec ] && echo "after ${MEM_EXEC_N:-10} × exec" || echo "idle, $at s after ready") | $(mib "$r") MiB | $(mib "$m") / $(mib "$tc") / $(mib "$rest") MiB; guest RAM in the host $(mib "$a") MiB, host memory $(mib "$host") MiB | $([ $img = minimal ] && echo "≤ 96 MiB") |"
		done
	done
	for side in density density.clone; do
		read -r n first last rss pss fit fitp host <<<"$(kv $side)"
		[ -n "${fitp:-}" ] || continue
		[ -n "$(kv mem.idle.minimal)" ] || printf '\n| host memory | | | goal |\n|---|---|---|---|\n'
		echo "| idle minimal $([ $side = density ] && echo "sandboxes (booted)" || echo "clones") in 8 GiB (by host memory; by PSS) | $fit; $fitp | $n started ($([ "$n" -lt "$fit" ] && echo "extrapolated" || echo "measured")): $(mib $((${host:-$rss} / n))) MiB each; create → ready 1st $first ms, last (no. $n) $last ms | |"
	done
	if [ -n "$(kv dash.paint)" ]; then
		read -r n med lo hi <<<"$(kv dash.paint)"
		read -r pages idle1 watched idle2 <<<"$(kv dash.cpu)"
		echo
		echo "| the dashboard (\`sbx serve\`, Chromium), $n sandboxes' records | figure | against |"
		echo "|---|---|---|"
		echo "| page load → list painted, median | $(printf '%.0f' "$med") ms (min $(printf '%.0f' "$lo"), max $(printf '%.0f' "$hi")) | |"
		[ -n "${idle2:-}" ] && echo "| server CPU with $pages pages watching live | $watched % of a core | idle $idle1 % before, $idle2 % after |"
	fi
} >"$SUM"
say "wrote $OUT and $SUM in $(((T_END - T_START) / 60)) min $(((T_END - T_START) % 60)) s"
