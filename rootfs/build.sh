#!/bin/sh
# Builds the guest images into build/: the kernel (build/vmlinuz, Debian's
# cloud flavour, unpacked, never installed), the sbx initramfs and the
# power-off-at-once baseline initramfs. Reproducible; cheap when up to date.
#
# Environment: SBX_INIT (default build/sbx-init), SOURCE_DATE_EPOCH (default 0),
# SBX_KERNEL_REFRESH=1 (resolve and fetch the newest kernel package again).
set -eu
cd "$(dirname "$0")/.."

# The kernel modules the guest loads at boot, plus their dependencies
# (worked out from modules.dep): vsock over virtio-mmio (microvm). Not
# vsock_loopback (vsock to the guest's own CID or CID 1): every vsock
# user in the guest talks to the host (CID 2: READY, the gateway,
# vsock-tool in the tests and benchmarks) or listens for it, and the
# in-guest benchmark client uses a Unix socket (bench/vm.sh). It cost
# 2.7 M instructions of boot.
MODULES="virtio_ring virtio virtio_mmio vsock vmw_vsock_virtio_transport_common
	vmw_vsock_virtio_transport"
# Loaded by PID 1 once the agent has told the host it is ready, less what
# the list above already loads: the balloon, whose free-page reporting
# gives freed guest memory back (~9 ms of module loading under TCG that
# READY does not wait for).
LATE_MODULES="virtio_balloon"
# Loaded by PID 1 only when the machine has PCI devices (a pausable
# sandbox's `pc` machine; microvm has no PCI): virtio over PCI, less what
# the list above already loads. A fifth of the boot's module work
# (signature checks, relocation) that a microvm would spend for nothing.
PCI_MODULES="virtio_pci"
# Loaded by the agent only when egress is on (docs/protocol/egress.md): the
# nftables nat chain and redirect, the refuse chain's reject, with what
# they depend on (conntrack, nf_nat, nf_reject_ipv4, nfnetlink, ...). Listed in etc/sbx/modules.egress, so a sandbox
# without --allow-net does not pay for them at boot.
EGRESS_MODULES="nf_tables nft_chain_nat nft_redir nft_reject_ipv4"
# Loaded by PID 1 only for a sandbox with disks (an image other than the
# initramfs, or volumes: docs/IMAGES.md): virtio disks, the image's file
# system (erofs), the overlay over it (ext4 is built in).
DISK_MODULES="virtio_blk erofs overlay"
# Loaded by PID 1 only for a root shared from the host over virtio-fs (the
# OCI runtime, oci/: a container's rootfs directory, not copied).
SHARE_MODULES="fuse virtiofs"
# Loaded by PID 1 only for a sandbox given a NIC (sbx-oci with an engine's
# network namespace, docs/OCI.md): virtio-net.
NET_MODULES="virtio_net"
KERNEL_META=linux-image-cloud-amd64

# Debian programs the guest carries, as HOST_PATH[:GUEST_PATH]: the SSH
# server that `sbx ssh` logs in to, and the SFTP server that scp uses
# (dropbear runs it from /usr/lib/sftp-server). They are dynamically
# linked: the loader and every library ldd names are copied as well.
GUEST_PROGRAMS="/usr/sbin/dropbear
	/usr/lib/openssh/sftp-server:/usr/lib/sftp-server"

B=build
W=$B/rootfs			# scratch: tools, generated files, specs
K=$B/kernel			# cache: the kernel package, unpacked
SBX_INIT=${SBX_INIT:-$B/sbx-init}
BUSYBOX=${BUSYBOX:-$B/busybox/busybox}	# scripts/busybox.sh: Debian's, with wget -T
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-0}"
export LC_ALL=C

say() { echo "image: $*" >&2; }
fail() { say "$*"; exit 1; }

[ -e "$SBX_INIT" ] || fail "$SBX_INIT is missing (make build/sbx-init)"
[ -x "$BUSYBOX" ] || fail "$BUSYBOX is missing (scripts/busybox.sh builds it)"
for p in $GUEST_PROGRAMS; do
	[ -x "${p%%:*}" ] || fail "${p%%:*} is missing (scripts/deps.sh: dropbear-bin, openssh-sftp-server)"
done
mkdir -p "$W" "$K"

# ---- kernel: resolve the metapackage, download once, unpack, depmod --------
kernel_fetch() {
	pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	[ -n "$pkg" ] || fail "cannot resolve $KERNEL_META (run apt-get update)"
	rm -rf "$K/deb" "$K/root" "$K/root.tmp"
	mkdir -p "$K/deb"
	say "fetching $pkg"
	# _apt cannot write into a root-owned build dir; that only costs a warning.
	(cd "$K/deb" && apt-get download -q "$pkg" 2>&1 | grep -v unsandboxed >&2 || true)
	set -- "$K"/deb/"$pkg"_*.deb
	[ -e "$1" ] || fail "apt-get download $pkg failed"
	dpkg-deb -x "$1" "$K/root.tmp"
	kver=$(ls "$K/root.tmp/lib/modules")
	# The package ships no modules.dep (postinst runs depmod): make it here.
	depmod -b "$K/root.tmp" "$kver"
	mv "$K/root.tmp" "$K/root"
}
if [ "${SBX_KERNEL_REFRESH:-}" = 1 ] || ! ls "$K"/root/boot/vmlinuz-* >/dev/null 2>&1; then
	kernel_fetch
fi
KVER=$(ls "$K/root/lib/modules")
MODDIR=$K/root/lib/modules/$KVER

# The shared libraries of $GUEST_PROGRAMS and the dynamic loader, as the
# paths ldd prints (where the loader looks for them), sorted and unique.
guest_libs() {
	for p in $GUEST_PROGRAMS; do
		ldd "${p%%:*}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
	done | sort -u
}
GUEST_LIBS=$(guest_libs)

# ---- up to date? -------------------------------------------------------------
OUTPUTS="$B/vmlinuz $B/initramfs.cpio.lz4 $B/baseline-initramfs.cpio.gz $B/mkcpio $B/tsc-khz"
stamp=$( (echo "$MODULES $PCI_MODULES $LATE_MODULES $EGRESS_MODULES $DISK_MODULES $SHARE_MODULES $NET_MODULES $KVER $SOURCE_DATE_EPOCH $GUEST_PROGRAMS $GUEST_LIBS"
	cat rootfs/build.sh rootfs/*.c lib/cpio.c lib/cpio.h lib/util.c launcher/tsc.c launcher/tsc.h \
		tests/system/vsock-tool.c \
		"$SBX_INIT" "$BUSYBOX" "$K"/root/boot/vmlinuz-* $GUEST_LIBS \
		$(for p in $GUEST_PROGRAMS; do echo "${p%%:*}"; done)) | sha256sum)
uptodate=1
for f in $OUTPUTS; do [ -e "$f" ] || uptodate=; done
if [ -n "$uptodate" ] && [ "$(cat "$W/stamp" 2>/dev/null)" = "$stamp" ]; then
	say "up to date"
	exit 0
fi
rm -f "$W/stamp"

# ---- tools and small guest programs -----------------------------------------
CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -O2 -I."
MUSL_CFLAGS="-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Os -static -s -I.
	-isystem $B/musl/kernel-headers"
# musl-gcc searches no /usr/include; vsock-tool needs linux/vm_sockets.h.
if [ ! -e "$B/musl/kernel-headers/linux" ]; then
	mkdir -p "$B/musl/kernel-headers"
	for d in /usr/include/linux /usr/include/asm-generic \
		"/usr/include/$(gcc -print-multiarch)/asm"; do
		ln -sfn "$d" "$B/musl/kernel-headers/$(basename "$d")"
	done
fi
cc $CFLAGS -o "$B/mkcpio" rootfs/mkcpio.c lib/cpio.c lib/util.c
cc $CFLAGS -o "$B/tsc-khz" rootfs/tsc-khz.c launcher/tsc.c
musl-gcc $MUSL_CFLAGS -o "$W/baseline-init" rootfs/baseline-init.c
musl-gcc $MUSL_CFLAGS -o "$B/vsock-tool" tests/system/vsock-tool.c

# ---- kernel and modules -----------------------------------------------------
cp "$K/root/boot/vmlinuz-$KVER" "$B/vmlinuz.tmp" && mv "$B/vmlinuz.tmp" "$B/vmlinuz"

# Prints the .ko paths (relative to $MODDIR) of $MODULES and everything they
# depend on, dependencies first. modules.dep lists each module's complete
# dependency set, so a depth-first walk is enough. Module names treat - and _
# alike; a wanted module that is built in (modules.builtin) is skipped.
modules_in_order() {
	awk -v want="$MODULES" -v builtin="$MODDIR/modules.builtin" '
	function name(path) { sub(/.*\//, "", path); sub(/\.ko.*$/, "", path);
		gsub(/-/, "_", path); return path }
	function visit(m,   i, n, d) {
		if (m in done) return
		done[m] = 1
		n = split(deps[m], d, " ")
		for (i = 1; i <= n; i++) visit(name(d[i]))
		print path[m]
	}
	BEGIN { while ((getline l < builtin) > 0) isbuiltin[name(l)] = 1 }
	{ m = name($1); sub(/:$/, "", $1); path[m] = $1
	  $1 = ""; deps[m] = $0 }
	END {
		n = split(want, w, /[ \t\n]+/)
		for (i = 1; i <= n; i++) {
			if (w[i] == "" || (w[i] in isbuiltin)) continue
			if (!(w[i] in path)) { print "no module " w[i] > "/dev/stderr"; exit 1 }
			visit(w[i])
		}
	}' "$MODDIR/modules.dep"
}
modules_in_order > "$W/modules.rel"
MODULES=$PCI_MODULES modules_in_order | { grep -vxF -f "$W/modules.rel" || true; } > "$W/modules-pci.rel"
MODULES=$LATE_MODULES modules_in_order | { grep -vxF -f "$W/modules.rel" || true; } > "$W/modules-late.rel"
MODULES=$EGRESS_MODULES modules_in_order > "$W/modules-egress.rel"
MODULES=$DISK_MODULES modules_in_order > "$W/modules-disk.rel"
MODULES=$SHARE_MODULES modules_in_order > "$W/modules-share.rel"
MODULES=$NET_MODULES modules_in_order > "$W/modules-net.rel"

# ---- /etc ---------------------------------------------------------------------
mkdir -p "$W/etc"
sed "s|^|/lib/modules/$KVER/|" "$W/modules.rel" > "$W/etc/modules"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-pci.rel" > "$W/etc/modules.pci"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-late.rel" > "$W/etc/modules.late"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-egress.rel" > "$W/etc/modules.egress"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-disk.rel" > "$W/etc/modules.disk"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-share.rel" > "$W/etc/modules.share"
sed "s|^|/lib/modules/$KVER/|" "$W/modules-net.rel" > "$W/etc/modules.net"
# PID 1 reads a list into 4 KiB of its stack and loads none of a longer
# one (lib/kmod.c, KMOD_LIST_MAX): refuse to build such an image.
for f in "$W"/etc/modules*; do
	[ "$(wc -c <"$f")" -le 4096 ] ||
		fail "$f is $(wc -c <"$f") bytes: PID 1 reads at most 4096 of a module list (lib/kmod.c)"
done
cat > "$W/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
EOF
cat > "$W/etc/group" <<'EOF'
root:x:0:
user:x:1000:
EOF
cat > "$W/etc/hosts" <<'EOF'
127.0.0.1	localhost
::1	localhost
EOF
cat > "$W/etc/resolv.conf" <<'EOF'
# The sandbox has no network until the host grants one.
EOF
# Login shells the SSH server accepts.
cat > "$W/etc/shells" <<'EOF'
/bin/sh
/bin/ash
EOF

# ---- what goes into the initramfs (mkcpio spec, see mkcpio --help) ----------
initramfs_spec() {
	echo "nod dev/console 0600 0 0 c 5 1"	# the kernel opens it for /init
	for d in proc sys sys/fs/cgroup dev dev/pts dev/shm run etc etc/sbx \
		lib/modules bin sbin usr/bin usr/sbin; do
		echo "dir $d 0755 0 0"
	done
	echo "dir tmp 1777 0 0"
	echo "dir root 0700 0 0"
	echo "dir home 0755 0 0"
	echo "dir home/user 0700 1000 1000"

	echo "file init $SBX_INIT 0755 0 0"
	echo "slink sbin/init /init 0777 0 0"
	echo "file bin/busybox $BUSYBOX 0755 0 0"
	# No /sbin/modprobe: the kernel runs it (a usermode helper, once the
	# initramfs is unpacked) for each module it asks for at boot: tens of
	# ms of QEMU's CPU time under TCG for nothing (the guest has no
	# modules.dep; sbx-init loads its lists itself), and workloads may
	# not load modules anyway (exec/restrict.c).
	"$BUSYBOX" --list-full | grep -vx -e sbin/init -e linuxrc -e bin/busybox -e sbin/modprobe |
		sed 's|.*|slink & /bin/busybox 0777 0 0|'
	echo "file usr/bin/vsock-tool $B/vsock-tool 0755 0 0"

	for p in $GUEST_PROGRAMS; do
		dst=${p#*:}
		echo "file ${dst#/} ${p%%:*} 0755 0 0"
	done
	for lib in $GUEST_LIBS; do
		echo "file ${lib#/} $(readlink -f "$lib") 0755 0 0"
	done

	for f in passwd group hosts resolv.conf shells; do
		echo "file etc/$f $W/etc/$f 0644 0 0"
	done
	echo "file etc/sbx/modules $W/etc/modules 0644 0 0"
	echo "file etc/sbx/modules.pci $W/etc/modules.pci 0644 0 0"
	echo "file etc/sbx/modules.late $W/etc/modules.late 0644 0 0"
	echo "file etc/sbx/modules.egress $W/etc/modules.egress 0644 0 0"
	echo "file etc/sbx/modules.disk $W/etc/modules.disk 0644 0 0"
	echo "file etc/sbx/modules.share $W/etc/modules.share 0644 0 0"
	echo "file etc/sbx/modules.net $W/etc/modules.net 0644 0 0"
	cat "$W/modules.rel" "$W/modules-pci.rel" "$W/modules-late.rel" "$W/modules-egress.rel" "$W/modules-disk.rel" "$W/modules-share.rel" \
		"$W/modules-net.rel" | sort -u | while read -r ko; do
		echo "file lib/modules/$KVER/$ko $MODDIR/$ko 0644 0 0"
	done
}

# Adds every missing parent directory, then sorts by name: parents come
# first, and the same inputs always give the same bytes.
spec_complete() {
	awk '{ print; n = split($2, p, "/"); d = ""
	       for (i = 1; i < n; i++) { d = d (i > 1 ? "/" : "") p[i]
	               if (!(d in seen)) { seen[d] = 1; extra[d] = 1 } }
	       named[$2] = 1 }
	     END { for (d in extra) if (!(d in named)) print "dir " d " 0755 0 0" }' |
		sort -k2,2 -u
}

# The image is lz4-compressed (legacy frames, the kernel's format): the
# kernel inflates gzip at boot in ~50 million more guest instructions,
# ~10% of its boot to /init under TCG. An lz4 stream has no end the kernel
# can find, so nothing may follow it: the launcher puts the per-sandbox
# config archive first. The baseline stays gzip, padded with NULs to 4
# bytes (where the kernel looks for a next archive).
archive() { # spec-file output compressor...
	local spec=$1 out=$2
	shift 2
	"$B/mkcpio" < "$spec" | "$@" > "$out.tmp"
	pad=$(( (4 - $(wc -c < "$out.tmp") % 4) % 4 ))
	[ "$1" = lz4 ] || head -c "$pad" /dev/zero >> "$out.tmp"
	mv "$out.tmp" "$out"
}

initramfs_spec | spec_complete > "$W/initramfs.list"
archive "$W/initramfs.list" "$B/initramfs.cpio.lz4" lz4 -l -9 -q
printf '%s\n' "nod dev/console 0600 0 0 c 5 1" \
	"file init $W/baseline-init 0755 0 0" | spec_complete > "$W/baseline.list"
archive "$W/baseline.list" "$B/baseline-initramfs.cpio.gz" gzip -n -9

echo "$stamp" > "$W/stamp"
say "kernel $KVER, $(wc -l < "$W/modules.rel") modules, $(wc -l < "$W/initramfs.list") entries," \
	"initramfs $(wc -c < "$B/initramfs.cpio.lz4") bytes"
