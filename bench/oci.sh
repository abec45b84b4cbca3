#!/bin/bash
# bench/oci.sh: containers through sbx-oci (each a microVM, docs/OCI.md)
# against the same containers through runc, Podman calling both in the same
# run, as markdown for bench/results.md:
#  1. `podman run --rm ... /bin/true`, the whole command a user waits for,
#     OCI_RUNS times each, alternated;
#  2. the host memory of one idle container of each (`sleep`, OCI_SETTLE_S
#     seconds after podman shows it up): RSS and PSS of every process it
#     costs: conmon and what it reaps (runc's container process; sbx-oci's
#     monitor, QEMU, virtiofsd, sbx-vsockd and the console supervisor).
# The root file system is the minimal image's busybox tree for both.
#  3. start-up from a template: sbx-oci cannot use one (docs/OCI.md, "What
#     it costs"); the run asks QEMU to save a VM with the vhost-user-fs
#     device a container's root needs, and prints QEMU's answer.
#
# crun (Debian's default for Podman) refuses this host's cgroups ("cgroups
# in hybrid mode not supported", with --cgroups=disabled too); runc runs
# with --cgroup-manager cgroupfs once the rlimits Podman asks for are ones
# it may set here (its default RLIMIT_NOFILE of 1048576 is above this
# host's hard limit): both runtimes get --ulimit nofile=1024:1024 and
# nproc=1024:1024. No network for either (--network none).
#
# Environment: OCI_RUNS (5), OCI_SETTLE_S (5).
set -eu
cd "$(dirname "$0")/.."
B=$(realpath "${SBX_BUILD:-build}")
OCI=$B/sbx-oci
OCI_RUNS=${OCI_RUNS:-5}
OCI_SETTLE_S=${OCI_SETTLE_S:-5}
KV=${BENCH_KV:-/dev/null}
VMS=/run/sbx # sbx-oci's VMs: the engine does not pass SBX_STATE_DIR on
TMP=$(mktemp -d /tmp/sbx-oci-bench.XXXXXX)
PODMAN=(podman --root "$TMP/podman/root" --runroot "$TMP/podman/run"
	--cgroup-manager cgroupfs --events-backend file)
RUN=(run --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
ROOTFS=(--rootfs "$TMP/rootfs") # last: podman takes what follows as the command
cleanup() {
	"${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1 || true
	findmnt -rn -o TARGET | grep "^$TMP/" | sort -r | xargs -r umount -l 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

say() { echo "bench/oci.sh: $*" >&2; }
now_ns() { date +%s%N; }
# "n median min max" of a column of numbers
stats() { sort -g | awk '{ v[NR] = $1 } END {
	if (!NR) { print "0 0 0 0"; exit }
	print NR, v[int(0.5 * (NR - 1) + 0.5) + 1], v[1], v[NR] }'; }
runtime_of() { [ "$1" = sbx-oci ] && echo "$OCI" || echo "$1"; }

command -v runc >/dev/null || { say "runc is not installed (scripts/deps.sh --bench)"; exit 1; }
command -v podman >/dev/null || { say "podman is not installed (scripts/deps.sh)"; exit 1; }
[ -x "$OCI" ] || { say "$OCI is missing (make all)"; exit 1; }
mkdir -p "$TMP/rootfs"
(cd "$TMP/rootfs" && lz4 -dc "$B/initramfs.cpio.lz4" | cpio -id --quiet) ||
	{ say "cannot unpack $B/initramfs.cpio.lz4"; exit 1; }

# 1. podman run --rm ... true, alternated.
one_run() { # RUNTIME: the wall time of podman run in ms
	local t0 t1
	t0=$(now_ns)
	"${PODMAN[@]}" --runtime "$(runtime_of "$1")" "${RUN[@]}" --rm "${ROOTFS[@]}" /bin/true \
		>/dev/null 2>"$TMP/err" || { say "podman run with $1 failed: $(cat "$TMP/err")"; exit 1; }
	t1=$(now_ns)
	echo $(((t1 - t0) / 1000000))
}
one_run runc >/dev/null # not counted: the first run warms podman's own caches
for i in $(seq "$OCI_RUNS"); do
	for rt in runc sbx-oci; do
		ms=$(one_run "$rt")
		echo "$ms" >>"$TMP/$rt.ms"
		say "run $i, $rt: $ms ms"
	done
done

# 2. One idle container of each: RSS and PSS of conmon and every process
# under it (conmon is the subreaper of what the runtime leaves), plus the
# sandbox's own pids for sbx-oci.
descendants() { # PID: it and every process under it
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ parent[$1] = $2; pids[NR] = $1 }
		END { keep[root] = 1; print root
		      do { more = 0
			   for (i in pids) { p = pids[i]
				if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; print p; more = 1 } } } while (more) }'
}
mem_kb() { # PIDS...: "rss pss" in kB, summed
	local p
	for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
		awk '/^Rss:/ { r += $2 } /^Pss:/ { s += $2 } END { print r + 0, s + 0 }'
}
idle_one() { # RUNTIME: "rss_kb pss_kb nprocs"
	local id conmon pids dir
	id=$("${PODMAN[@]}" --runtime "$(runtime_of "$1")" "${RUN[@]}" -d "${ROOTFS[@]}" /bin/sleep 600 2>"$TMP/err") ||
		{ say "podman run -d with $1 failed: $(cat "$TMP/err")"; exit 1; }
	for _ in $(seq 600); do
		[ "$("${PODMAN[@]}" inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ] && break
		sleep 0.1
	done
	sleep "$OCI_SETTLE_S"
	conmon=$("${PODMAN[@]}" inspect -f '{{.State.ConmonPid}}' "$id")
	pids=$(descendants "$conmon")
	dir=$VMS/oci-${id:0:40}
	if [ "$1" = sbx-oci ] && [ -r "$dir/meta" ]; then
		pids="$pids $(sed -n 's/^\(qemu\|vsockd\|share\)_pid = //p' "$dir/meta")"
	fi
	pids=$(echo "$pids" | tr ' ' '\n' | grep -v '^0*$' | sort -un)
	echo "$(mem_kb $pids) $(echo "$pids" | wc -l)"
	"${PODMAN[@]}" rm -f -t 0 "$id" >/dev/null 2>&1
}
mem_runc=$(idle_one runc)
mem_sbx=$(idle_one sbx-oci)

# 3. Why no template: QEMU (paused, no guest) with the vhost-user-fs device
# of a container's root, asked to save its state as sbx template create
# does (a migration stream).
template_probe() {
	local d=$TMP/probe qp vp answer
	mkdir -p "$d"
	/usr/lib/qemu/virtiofsd --socket-path="$d/fs.sock" -o source="$TMP/rootfs" >"$d/vfs.log" 2>&1 &
	vp=$!
	for _ in $(seq 100); do [ -S "$d/fs.sock" ] && break; sleep 0.05; done
	qemu-system-x86_64 -S -M microvm,memory-backend=mem -m 256 -nodefaults -display none \
		-object memory-backend-memfd,id=mem,size=256M,share=on \
		-global virtio-mmio.force-legacy=false -chardev socket,id=fs,path="$d/fs.sock" \
		-device vhost-user-fs-device,chardev=fs,tag=probe \
		-qmp unix:"$d/qmp.sock",server=on,wait=off >"$d/qemu.log" 2>&1 &
	qp=$!
	for _ in $(seq 100); do [ -S "$d/qmp.sock" ] && break; sleep 0.05; done
	answer=$(printf '%s\n' '{"execute":"qmp_capabilities"}' \
		'{"execute":"migrate","arguments":{"uri":"exec:cat >/dev/null"}}' |
		socat -t 2 - UNIX-CONNECT:"$d/qmp.sock" 2>&1 | sed -n 's/.*"desc": "\([^"]*\)".*/\1/p' | tail -1)
	kill "$qp" "$vp" 2>/dev/null || true
	wait "$qp" "$vp" 2>/dev/null || true
	echo "${answer:-saved (no error)}"
}
probe=$(template_probe)
say "QEMU asked to save a VM with vhost-user-fs: $probe"

read -r n rmed rmin rmax < <(stats <"$TMP/runc.ms")
read -r _ smed smin smax < <(stats <"$TMP/sbx-oci.ms")
read -r rrss rpss rn <<<"$mem_runc"
read -r srss spss sn <<<"$mem_sbx"
ratio=$(awk -v a="$smed" -v b="$rmed" 'BEGIN { printf "%.1f", b ? a / b : 0 }')
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

echo "Podman $(podman --version | awk '{print $3}') calling runc $(runc --version | awk 'NR == 1 {print $3}')"
echo "and sbx-oci (QEMU under TCG, 1 vCPU, 1024 MiB, the root over virtio-fs), alternated in"
echo "the same run; busybox root file system for both. See bench/oci.sh."
echo
echo "| runtime | \`podman run --rm … true\`: median ms (min–max, N=$n) | idle container: host RSS MiB | PSS MiB | processes |"
echo "|---|---|---|---|---|"
echo "| runc | $rmed ($rmin–$rmax) | $(mib "$rrss") | $(mib "$rpss") | $rn |"
echo "| sbx-oci | $smed ($smin–$smax) | $(mib "$srss") | $(mib "$spss") | $sn |"
echo
echo "sbx-oci / runc: ${ratio}× the time of \`podman run --rm … true\`."
echo
echo "Start-up from a template: not measured, sbx-oci cannot use one. A template is a"
echo "VM saved as QEMU's migration stream; a container's root reaches the guest over a"
echo "vhost-user-fs device, and QEMU $(qemu-system-x86_64 --version | awk 'NR == 1 {print $4}') refuses to save a VM that has one (asked in"
echo "this run: \"$probe\"). A template saved without the device cannot take it"
echo "later (microvm has no hot-plug), and the root is the bundle's, mounted by PID 1"
echo "at boot. bench/template.sh measures what a template saves a sandbox without one."
echo "oci.run $n $rmed $smed $ratio $rrss $srss" >>"$KV"
echo "oci.template unsupported" >>"$KV"
