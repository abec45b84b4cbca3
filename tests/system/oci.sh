#!/bin/bash
# System tests for sbx-oci (docs/OCI.md): Podman and containerd from
# Debian run containers whose runtime is build/sbx-oci, so each container
# is a microVM (QEMU, sbx-init as PID 1) with the container's root file
# system shared over virtio-fs. Podman and containerd keep their state
# under this suite's temporary directory. Needs root.
. "$(dirname "$0")/../lib.sh"

SUITE=oci
# The engines do not pass our environment on to the runtime: its VMs are
# in sbx's default state directory (root: /run/sbx), named oci-<ID>.
unset SBX_STATE_DIR
VMS=/run/sbx
OCI=$BUILD/sbx-oci
ROOTFS=$T_TMP/rootfs            # busybox, from the minimal image
DEBIAN=$BUILD/oci/debian-rootfs # Debian, from the image `make image` built
PODMAN=(podman --root "$T_TMP/podman/root" --runroot "$T_TMP/podman/run"
	--cgroup-manager cgroupfs --events-backend file --runtime "$OCI")
on_exit 'for d in "$VMS"/oci-*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
on_exit '"${PODMAN[@]}" rm -af -t 0 >/dev/null 2>&1'
on_exit '[ -n "${CTRD_PID:-}" ] && kill $CTRD_PID'
on_exit 'ip netns del sbxoci-pod 2>/dev/null; ip netns del sbxoci-peer 2>/dev/null'
on_exit 'findmnt -rn -o TARGET | grep "^$T_TMP/" | sort -r | xargs -r umount -l'

# nothing_left: no VM, virtiofsd or state of sbx or sbx-oci remains.
nothing_left() {
	local left
	left=$(ls -d "$VMS"/oci-* 2>/dev/null; pgrep -f "qemu-system.*$VMS/oci-"; pgrep -f "virtiofsd.*$VMS/oci-")
	[ -z "$left" ] || fail "left behind: $left"
}

# up NAME: podman shows container NAME running.
up() { "${PODMAN[@]}" ps --format '{{.Names}} {{.Status}}' | grep -q "^$1 Up"; }
# task STATE NAME: ctr shows task NAME in STATE.
task() { ctr --address "$T_TMP/ctrd/containerd.sock" task ls | grep -q "^$2 .*$1"; }

prun() { # prun ARGS...: podman run --rm with no network
	"${PODMAN[@]}" run --rm --network none "$@"
}

test_setup() {
	mkdir -p "$ROOTFS" && (cd "$ROOTFS" && lz4 -dc "$BUILD/initramfs.cpio.lz4" | cpio -id --quiet) ||
		fail "cannot unpack the minimal image into $ROOTFS" || return 1
	command -v podman >/dev/null || fail "podman is not installed (scripts/deps.sh)" || return 1
	# The Debian tree, once per image build: the image's erofs unpacked.
	local base=$BUILD/images/debian/base.erofs
	[ -r "$base" ] || fail "$base is missing (make image)" || return 1
	if [ ! -e "$DEBIAN.stamp" ] || [ "$base" -nt "$DEBIAN.stamp" ]; then
		rm -rf "$DEBIAN" && mkdir -p "$DEBIAN" &&
			fsck.erofs --extract="$DEBIAN" --preserve "$base" >/dev/null &&
			touch "$DEBIAN.stamp" || fail "cannot unpack $base into $DEBIAN" || return 1
	fi
}

test_exit_status() {
	local out rc
	out=$(prun --rootfs "$DEBIAN" -- /bin/sh -c 'echo hi; exit 3' 2>"$T_TMP/err")
	rc=$?
	expect_eq "output" "$out" hi || { cat "$T_TMP/err" >&2; return 1; }
	expect_eq "exit status" "$rc" 3 || return 1
	nothing_left
}

test_is_a_vm() {
	local out
	# (Workloads do not see PID 1 in their /proc: the kernel and its command
	# line, which sbx's launcher wrote, tell the VM.)
	out=$(prun --rootfs "$ROOTFS" /bin/sh -c 'uname -r; cat /proc/cmdline' 2>"$T_TMP/err")
	expect_eq "guest kernel" "$(echo "$out" | head -1)" "$(ls "$BUILD"/kernel/root/lib/modules)" ||
		{ cat "$T_TMP/err" >&2; return 1; }
	[ "$(echo "$out" | head -1)" != "$(uname -r)" ] || fail "the host's kernel" || return 1
	case $(echo "$out" | tail -1) in
	*console=ttyS0*panic=-1*) ;;
	*) fail "not sbx's kernel command line: $out" ;;
	esac
}

test_options() {
	local out
	out=$(prun -e FOO=bar -w /tmp -u 1000 --memory 1500m --rootfs "$DEBIAN" \
		/bin/bash -c 'echo $FOO; pwd; id -u; grep -o "MemTotal: *[0-9]*" /proc/meminfo' 2>"$T_TMP/err")
	expect_eq "-e, -w, -u" "$(echo "$out" | head -3)" "bar
/tmp
1000" || { cat "$T_TMP/err" >&2; return 1; }
	# 1500 MiB of VM: the guest sees a bit less than that, more than 1 GiB.
	local kb=${out##* }
	[ "$kb" -gt 1300000 ] && [ "$kb" -lt 1536000 ] || fail "--memory 1500m: MemTotal $kb kB"
}

test_limits_and_hostname() {
	local out
	out=$(prun --ulimit nofile=1234:2345 --ulimit core=0:0 --hostname oci-box --rootfs "$ROOTFS" \
		/bin/sh -c 'ulimit -n; ulimit -Hn; ulimit -c; hostname' 2>"$T_TMP/err")
	expect_eq "ulimit -n, -Hn, -c and hostname in the VM" "$out" "1234
2345
0
oci-box" || { cat "$T_TMP/err" >&2; return 1; }
	# A host name the guest would refuse: an error of create, naming it.
	if out=$(prun --hostname bad_name --rootfs "$ROOTFS" /bin/true 2>&1); then
		fail "an invalid host name was accepted"
		return 1
	fi
	case $out in *"bad_name"*"not a host name"*) ;; *) fail "unclear error: $out" ;; esac
}

# Engines write "unlimited" as 18446744073709551615 (UINT64_MAX), above
# jansson's int64: it is read as unlimited; another integer that large is
# still refused, naming it, before any VM.
test_unlimited_rlimit() {
	local out b=$T_TMP/big
	out=$(prun --ulimit core=-1:-1 --rootfs "$ROOTFS" /bin/sh -c 'ulimit -c; ulimit -Hc' 2>"$T_TMP/err")
	expect_eq "--ulimit core=-1:-1 in the VM" "$out" "unlimited
unlimited" || { cat "$T_TMP/err" >&2; return 1; }
	mkdir -p "$b"
	printf '{"ociVersion":"1.0.2","root":{"path":"%s"},"process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_CORE","soft":18446744073709551614,"hard":18446744073709551615}]}}' \
		"$ROOTFS" >"$b/config.json"
	if out=$("$OCI" --root "$T_TMP/ocir" create --bundle "$b" big 2>&1); then
		"$OCI" --root "$T_TMP/ocir" delete --force big
		fail "an rlimit of 18446744073709551614 was accepted" || return 1
	fi
	case $out in *"too big integer"*18446744073709551614*) ;; *) fail "unclear error: $out" || return 1 ;; esac
	nothing_left
}

# The one case where the VM gets a NIC: Podman's CNI bridge namespace. The
# guest takes the namespace's address and route, and reaches a server on
# the host side of the bridge (its gateway), with the engine's
# /etc/resolv.conf; with --network none (the other tests) it has lo only.
test_network_bridge() {
	local port=18457 srv out
	socat -u TCP-LISTEN:$port,reuseaddr OPEN:"$T_TMP/got",creat,trunc &
	srv=$!
	out=$("${PODMAN[@]}" run --rm --network bridge --dns 10.9.9.9 --rootfs "$ROOTFS" /bin/sh -c \
		'ip addr show eth0 | grep "inet "; grep nameserver /etc/resolv.conf;
		 gw=$(ip route | awk "/^default/ {print \$3}");
		 echo "from the VM" | nc -w 10 "$gw" '$port 2>"$T_TMP/err")
	local rc=$?
	sleep 1
	kill $srv 2>/dev/null
	[ $rc -eq 0 ] || fail "podman run --network bridge: $rc: $(cat "$T_TMP/err")" || return 1
	case $out in *"inet "*"eth0"*) ;; *) fail "no address on eth0 in the VM: $out" || return 1 ;; esac
	# The engine's /etc/resolv.conf (--dns) is the guest's: a bind mount.
	case $out in *"nameserver 10.9.9.9"*) ;; *) fail "not the engine's resolv.conf: $out" || return 1 ;; esac
	expect_eq "what the host-side server got" "$(cat "$T_TMP/got" 2>/dev/null)" "from the VM" ||
		return 1
	out=$(prun --rootfs "$ROOTFS" /bin/sh -c 'ls /sys/class/net' 2>&1)
	expect_eq "--network none: interfaces" "$out" "lo"
}

# config.json's mounts: a tmpfs made in the guest with the size asked
# for; the files Podman binds (/etc/hostname, /etc/hosts) as the guest's.
test_tmpfs_and_engine_files() {
	local out
	out=$(prun --tmpfs /scratch:size=16m,mode=1777 --hostname bound-name --add-host db.test:10.9.8.7 \
		--rootfs "$ROOTFS" /bin/sh -c 'grep " /scratch " /proc/mounts; echo "$(cat /etc/hostname)";
		grep db.test /etc/hosts; echo x >/scratch/f && cat /scratch/f' 2>"$T_TMP/err")
	case $out in
	"tmpfs /scratch tmpfs "*nosuid*nodev*size=16384k*) ;;
	*) fail "no 16 MiB tmpfs on /scratch in the VM: $out $(cat "$T_TMP/err")" || return 1 ;;
	esac
	expect_eq "the engine's files and the tmpfs" "$(echo "$out" | tail -3 | tr -s ' \t' ' ')" \
		"bound-name
10.9.8.7 db.test
x" || return 1
	nothing_left
}

# -v HOSTDIR:/data: the VM reads the host's file and writes one the host
# sees; a single file is bound too.
test_bind_rw() {
	local d=$T_TMP/hostdir out
	mkdir -p "$d" && echo from-host >"$d/in.txt" && echo one-file >"$T_TMP/single.txt"
	rm -f "$d/out.txt"
	out=$(prun -v "$d:/data" -v "$T_TMP/single.txt:/etc/single.txt:ro" --rootfs "$DEBIAN" \
		/bin/sh -c 'cat /data/in.txt /etc/single.txt; echo from-vm >/data/out.txt' 2>"$T_TMP/err")
	expect_eq "what the VM read" "$out" "from-host
one-file" || { cat "$T_TMP/err" >&2; return 1; }
	expect_eq "what the host got" "$(cat "$d/out.txt" 2>&1)" from-vm || return 1
	! findmnt -rn -o TARGET | grep -q "^$DEBIAN/data" || fail "the bind mount is on the host" ||
		return 1
	nothing_left
}

# -v HOSTDIR:/data:ro: reads work, writes are refused and reach nothing.
test_bind_ro() {
	local d=$T_TMP/hostdir out
	mkdir -p "$d" && echo from-host >"$d/in.txt"
	rm -f "$d/no.txt"
	out=$(prun -v "$d:/data:ro" --rootfs "$ROOTFS" \
		/bin/sh -c 'cat /data/in.txt; echo x >/data/no.txt && echo WROTE' 2>&1)
	case $out in
	from-host*"Read-only file system"*) ;;
	*) fail "a read-only bind mount: $out" || return 1 ;;
	esac
	[ ! -e "$d/no.txt" ] || fail "the write reached the host" || return 1
	nothing_left
}

# A Kubernetes pod as containerd's CRI makes it, without Kubernetes: the
# sandbox ("pause") container, annotated io.kubernetes.cri.container-type
# = sandbox, in the pod's network namespace (a veth to a peer namespace,
# both made here); then an application container whose namespace is the
# sandbox's pid's, /proc/PID/ns/net, as containerd gives it. The sandbox
# is a host process in the pod's namespace, no VM; the application's VM
# gets the pod's interface and reaches the peer.
test_pod_sandbox() {
	local port=18458 srv pid app=$T_TMP/pod-app sbox=$T_TMP/pod-sandbox out
	ip netns add sbxoci-pod && ip netns add sbxoci-peer &&
		ip link add sbxoci0 type veth peer name sbxoci1 &&
		ip link set sbxoci0 netns sbxoci-pod && ip link set sbxoci1 netns sbxoci-peer &&
		ip -n sbxoci-pod addr add 10.77.0.2/24 dev sbxoci0 && ip -n sbxoci-pod link set sbxoci0 up &&
		ip -n sbxoci-peer addr add 10.77.0.1/24 dev sbxoci1 && ip -n sbxoci-peer link set sbxoci1 up ||
		fail "cannot make the pod's namespaces" || return 1
	mkdir -p "$sbox" "$app"
	printf '{"ociVersion":"1.0.2","root":{"path":"%s"},"process":{"args":["/pause"],"cwd":"/","user":{"uid":0,"gid":0}},"annotations":{"io.kubernetes.cri.container-type":"sandbox"},"linux":{"namespaces":[{"type":"network","path":"/run/netns/sbxoci-pod"}]}}' \
		"$ROOTFS" >"$sbox/config.json"
	"$OCI" --root "$T_TMP/ocir" create --bundle "$sbox" pod </dev/null >/dev/null 2>"$T_TMP/err" &&
		"$OCI" --root "$T_TMP/ocir" start pod 2>>"$T_TMP/err" ||
		fail "the sandbox container: $(cat "$T_TMP/err")" || return 1
	pid=$("$OCI" --root "$T_TMP/ocir" state pod | sed -n 's/.*"pid": \([0-9]*\).*/\1/p')
	[ ! -e "$VMS/oci-pod" ] || fail "the sandbox container has a VM" || return 1
	expect_eq "the sandbox's network namespace" "$(readlink "/proc/$pid/ns/net")" \
		"$(ip netns exec sbxoci-pod readlink /proc/self/ns/net)" || return 1
	ip netns exec sbxoci-peer socat -u TCP-LISTEN:$port,reuseaddr OPEN:"$T_TMP/pod-got",creat,trunc &
	srv=$!
	printf '{"ociVersion":"1.0.2","root":{"path":"%s"},"process":{"args":["/bin/sh","-c","ip addr show eth0 | grep -o \\"inet [0-9./]*\\"; echo from-the-pod | nc -w 10 10.77.0.1 %s"],"cwd":"/","user":{"uid":0,"gid":0}},"annotations":{"io.kubernetes.cri.container-type":"container"},"linux":{"namespaces":[{"type":"network","path":"/proc/%s/ns/net"}]}}' \
		"$ROOTFS" $port "$pid" >"$app/config.json"
	"$OCI" --root "$T_TMP/ocir" create --bundle "$app" app </dev/null >"$T_TMP/pod-out" 2>"$T_TMP/err" &&
		"$OCI" --root "$T_TMP/ocir" start app 2>>"$T_TMP/err" ||
		fail "the application container: $(cat "$T_TMP/err")" || { kill $srv; return 1; }
	wait_for 60 eval '"$OCI" --root "$T_TMP/ocir" state app | grep -q "\"stopped\""'
	kill $srv 2>/dev/null
	expect_eq "the application's VM: eth0" "$(cat "$T_TMP/pod-out")" "inet 10.77.0.2/24" ||
		{ cat "$T_TMP/err" >&2; return 1; }
	expect_eq "what the peer got" "$(cat "$T_TMP/pod-got" 2>/dev/null)" from-the-pod || return 1
	"$OCI" --root "$T_TMP/ocir" kill pod TERM || fail "kill the sandbox" || return 1
	wait_for 10 eval '! kill -0 '"$pid"' 2>/dev/null' || fail "the sandbox outlived SIGTERM" || return 1
	"$OCI" --root "$T_TMP/ocir" delete app && "$OCI" --root "$T_TMP/ocir" delete pod ||
		fail "delete" || return 1
	nothing_left
}

test_terminal() {
	local out
	out=$(script -qec "${PODMAN[*]} run --rm -it --network none --rootfs $ROOTFS /bin/sh -c 'tty; exit 4'" /dev/null)
	local rc=$?
	case $out in
	*/dev/pts/*) ;;
	*) fail "-it: no terminal in the VM: $out" || return 1 ;;
	esac
	expect_eq "-it exit status" "$rc" 4
}

test_ps_and_stop() {
	"${PODMAN[@]}" run -d --name long --network none --rootfs "$ROOTFS" /bin/sh -c 'sleep 600' \
		>/dev/null 2>"$T_TMP/err" || fail "run -d: $(cat "$T_TMP/err")" || return 1
	wait_for 60 up long ||
		fail "podman ps does not show it running: $("${PODMAN[@]}" ps -a 2>&1)" || return 1
	"${PODMAN[@]}" stop -t 5 long >/dev/null 2>"$T_TMP/err" || fail "stop: $(cat "$T_TMP/err")" ||
		return 1
	expect_eq "stopped by SIGTERM" "$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' long)" 143 ||
		return 1
	"${PODMAN[@]}" rm long >/dev/null || fail "rm" || return 1
	nothing_left
}

test_imported_image() {
	tar -C "$ROOTFS" -cf "$T_TMP/rootfs.tar" . || return 1
	"${PODMAN[@]}" import "$T_TMP/rootfs.tar" localhost/sbx-busybox >/dev/null 2>"$T_TMP/err" ||
		fail "import: $(cat "$T_TMP/err")" || return 1
	expect_eq "podman run IMAGE" "$(prun localhost/sbx-busybox /bin/sh -c 'echo from-image' 2>"$T_TMP/err")" \
		from-image || { cat "$T_TMP/err" >&2; return 1; }
}

test_containerd() {
	command -v containerd >/dev/null || fail "containerd is not installed" || return 1
	local sock=$T_TMP/ctrd/containerd.sock
	mkdir -p "$T_TMP/ctrd"
	containerd --root "$T_TMP/ctrd/root" --state "$T_TMP/ctrd/state" --address "$sock" \
		>"$T_TMP/ctrd/log" 2>&1 &
	CTRD_PID=$!
	wait_for 30 test -S "$sock" || fail "containerd did not start: $(tail -5 "$T_TMP/ctrd/log")" ||
		return 1
	local ctr=(ctr --address "$sock")
	# The image podman imported, as an archive containerd reads.
	"${PODMAN[@]}" save --format docker-archive -o "$T_TMP/img.tar" localhost/sbx-busybox \
		>/dev/null 2>&1 && "${ctr[@]}" image import "$T_TMP/img.tar" >/dev/null 2>"$T_TMP/err" ||
		fail "ctr image import: $(cat "$T_TMP/err")" || return 1
	local out rc
	out=$("${ctr[@]}" run --rm --runc-binary "$OCI" localhost/sbx-busybox:latest c1 \
		/bin/sh -c 'echo ctr-hi; exit 5' 2>"$T_TMP/err")
	rc=$?
	expect_eq "ctr run" "$out" ctr-hi || { cat "$T_TMP/err" >&2; return 1; }
	expect_eq "ctr run exit status" "$rc" 5 || return 1
	"${ctr[@]}" run -d --runc-binary "$OCI" localhost/sbx-busybox:latest c2 /bin/sh -c 'sleep 600' \
		>/dev/null 2>"$T_TMP/err" || fail "ctr run -d: $(cat "$T_TMP/err")" || return 1
	wait_for 60 task RUNNING c2 || fail "c2 is not running" ||
		return 1
	"${ctr[@]}" task kill -s SIGKILL c2 || fail "ctr task kill" || return 1
	wait_for 30 task STOPPED c2 || fail "c2 did not stop" || return 1
	"${ctr[@]}" task rm c2 >/dev/null && "${ctr[@]}" container rm c2 || fail "ctr rm c2" || return 1
	nothing_left
}

test_faults() {
	local out rc
	# A program that does not exist: 127, with its name.
	out=$(prun --rootfs "$ROOTFS" /no/such/program 2>&1)
	rc=$?
	expect_eq "missing program" "$rc" 127 || return 1
	case $out in *"/no/such/program"*) ;; *) fail "no name in: $out" || return 1 ;; esac
	# A mount the VM cannot have: refused, naming the mount and its type.
	out=$(prun --mount type=devpts,destination=/mnt/pts --rootfs "$ROOTFS" /bin/true 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "a devpts mount at /mnt/pts was accepted" || return 1
	case $out in *"/mnt/pts"*"devpts"*"not supported"*) ;; *) fail "unclear error: $out" || return 1 ;; esac
	nothing_left || return 1
	# A bundle whose rootfs is missing: sbx-oci create alone.
	mkdir -p "$T_TMP/bundle"
	printf '{"ociVersion":"1.0.2","root":{"path":"%s"},"process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}}}' \
		"$T_TMP/missing" >"$T_TMP/bundle/config.json"
	out=$("$OCI" --root "$T_TMP/ocir" create --bundle "$T_TMP/bundle" bad 2>&1)
	rc=$?
	[ $rc -ne 0 ] || fail "a missing rootfs was accepted" || return 1
	case $out in *"$T_TMP/missing"*) ;; *) fail "unclear error: $out" || return 1 ;; esac
	[ ! -e "$T_TMP/ocir/bad" ] || fail "state left for a failed create" || return 1
	nothing_left
}

# The launcher starts QEMU, virtiofsd and sbx-vsockd with nothing of its
# caller's but their stdio: a descriptor the engine left open in sbx-oci
# (fd 7 here) must not live on in them.
test_no_fd_leak() {
	local b=$T_TMP/leak pid left=
	mkdir -p "$b"
	printf '{"ociVersion":"1.0.2","root":{"path":"%s"},"process":{"args":["/bin/sleep","600"],"cwd":"/","user":{"uid":0,"gid":0}}}' \
		"$ROOTFS" >"$b/config.json"
	"$OCI" --root "$T_TMP/ocir" create --bundle "$b" leak 7>"$T_TMP/marker" </dev/null \
		>"$T_TMP/leak.out" 2>"$T_TMP/err" || fail "create: $(cat "$T_TMP/err")" || return 1
	for pid in $(pgrep -f "$VMS/oci-leak/"); do
		ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$T_TMP/marker" && left="$left $pid"
	done
	"$OCI" --root "$T_TMP/ocir" delete --force leak || fail "delete --force" || return 1
	[ -z "$left" ] || fail "the engine's descriptor lives on in:$left" || return 1
	nothing_left
}

test_vm_dies() {
	"${PODMAN[@]}" run -d --name dies --network none --rootfs "$ROOTFS" /bin/sh -c 'sleep 600' \
		>/dev/null 2>"$T_TMP/err" || fail "run -d: $(cat "$T_TMP/err")" || return 1
	wait_for 60 up dies || fail "not running" ||
		return 1
	pkill -KILL -f "qemu-system.*$VMS/oci-" || fail "no QEMU to kill" || return 1
	wait_for 30 eval '! up dies' ||
		fail "podman still shows it running after its VM died" || return 1
	expect_eq "exit status of a dead VM" "$("${PODMAN[@]}" inspect -f '{{.State.ExitCode}}' dies)" 137 ||
		return 1
	"${PODMAN[@]}" rm dies >/dev/null || fail "rm" || return 1
	nothing_left
}

t "unpack the test root file systems" test_setup || exit 0
t "podman run --rootfs DEBIAN: output and exit status 3" test_exit_status
t "the container is a VM: the guest kernel, sbx's kernel command line" test_is_a_vm
t "-e, -w, -u and --memory take effect in the VM" test_options
t "--ulimit and --hostname take effect in the VM" test_limits_and_hostname
t "--ulimit core=-1:-1 (18446744073709551615 in config.json) is unlimited in the VM" test_unlimited_rlimit
t "podman run --network bridge: a NIC with the namespace's address reaches the host side; the engine's resolv.conf" test_network_bridge
t "--tmpfs /scratch:size=16m is a 16 MiB tmpfs; the engine's /etc/hostname and /etc/hosts are bound" test_tmpfs_and_engine_files
t "-v HOSTDIR:/data: the VM reads and writes the host's directory; a single file is bound" test_bind_rw
t "-v HOSTDIR:/data:ro: writes are refused" test_bind_ro
t "a pod: the sandbox container on the host in the pod's namespace, the app's VM gets its NIC" test_pod_sandbox
t "-it gets a terminal" test_terminal
t "podman ps shows it running; podman stop stops it" test_ps_and_stop
t "an imported image runs with podman run IMAGE" test_imported_image
t "containerd: ctr run's exit status, ctr task kill" test_containerd
t "faults: missing program 127, unsupported mount type refused, missing rootfs" test_faults
t "a VM that dies ends the container with 137, nothing left" test_vm_dies
t "no descriptor of the engine reaches QEMU, virtiofsd or sbx-vsockd" test_no_fd_leak
