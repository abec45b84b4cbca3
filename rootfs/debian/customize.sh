#!/bin/sh
# The mmdebstrap customize hook of rootfs/debian.sh: turns the freshly
# installed Debian tree in $1 into the sandbox base image — Deno, sbx-init,
# locales, the user `app`, a VM without systemd — and strips what would make
# two builds differ. Runs as root, outside the chroot, with mmdebstrap's
# mounts in place. Environment (set by debian.sh): SBX_DENO_BIN, SBX_INIT_BIN,
# SBX_META_TMP (a directory for the package list and the archive's Release
# dates, read before mmdebstrap removes the apt lists).
set -eu
R=$1
fail() { echo "debian/customize: $*" >&2; exit 1; }
[ -d "$R/usr" ] || fail "$R is not a root file system"
: "${SBX_DENO_BIN:?}" "${SBX_INIT_BIN:?}" "${SBX_META_TMP:?}"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	LC_ALL=C SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" "$@"; }

# ---- programs from outside Debian ------------------------------------------
install -D -m 0755 -o 0 -g 0 "$SBX_DENO_BIN" "$R/usr/local/bin/deno"
# /sbin is /usr/sbin on Debian 12 (merged /usr), so this is /sbin/sbx-init too.
install -D -m 0755 -o 0 -g 0 "$SBX_INIT_BIN" "$R/usr/sbin/sbx-init"
[ -x "$R/sbin/sbx-init" ] || fail "/sbin/sbx-init does not resolve in the tree"

# ---- locales: C.UTF-8 ships with glibc; generate en_US.UTF-8 ----------------
echo "en_US.UTF-8 UTF-8" > "$R/etc/locale.gen"
in_root locale-gen >/dev/null || fail "locale-gen failed"
printf 'LANG=C.UTF-8\n' > "$R/etc/default/locale"

# ---- users: root (no password; reachable as -u root) and app (uid 1000) ----
in_root useradd --create-home --home-dir /home/app --uid 1000 --user-group \
	--shell /bin/bash --comment app app || fail "useradd app failed"
# '*': no password login, but not locked — dropbear refuses accounts whose
# password field starts with '!' even for public-key logins.
in_root usermod --password '*' app
printf 'app ALL=(ALL:ALL) NOPASSWD: ALL\n' > "$R/etc/sudoers.d/app"
chmod 0440 "$R/etc/sudoers.d/app"
in_root visudo -c -q -f /etc/sudoers.d/app || fail "sudoers.d/app does not parse"

# ---- a VM without systemd -----------------------------------------------------
# sbx-init is PID 1 and starts nothing: packages installed later with apt
# must not try to start services either (as in Debian's container images).
printf '#!/bin/sh\n# sbx: no service manager in the sandbox; do not start services.\nexit 101\n' \
	> "$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
# Host name, name service and DNS are the agent's at boot; keep fixed content.
echo sandbox > "$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tsandbox\n' \
	> "$R/etc/hosts"
rm -f "$R/etc/resolv.conf"
printf '# The sandbox has no network until the host grants one.\n' > "$R/etc/resolv.conf"
# apt: no translated descriptions (smaller lists in a sandbox).
printf 'Acquire::Languages "none";\n' > "$R/etc/apt/apt.conf.d/90sbx"

# ---- records for the metadata file, while the apt lists still exist ---------
in_root dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n' |
	sort > "$SBX_META_TMP/packages.txt"
for f in "$R"/var/lib/apt/lists/*_InRelease; do
	[ -e "$f" ] || continue
	printf '%s\t%s\n' "$(basename "$f")" \
		"$(sed -n 's/^Date: //p' "$f" | head -n 1)"
done > "$SBX_META_TMP/releases.txt"

# The main tools, run once each: a check that they work in this tree, and
# their versions for base.meta. HOME is a scratch directory (npm writes logs).
mkdir -p "$R/tmp/sbx-home"
for cmd in "python3 --version" "node --version" "npm --version" "deno --version" \
	"git --version" "bash --version" "sudo -V" "curl --version" "pip3 --version"; do
	out=$(chroot "$R" /usr/bin/env -i PATH=/usr/local/bin:/usr/sbin:/usr/bin HOME=/tmp/sbx-home \
		LC_ALL=C.UTF-8 $cmd 2>&1) || fail "'$cmd' failed in the tree: $out"
	# (sudo warns that the build host's name does not resolve in the tree.)
	out=$(printf '%s\n' "$out" | grep -v 'unable to resolve host' | head -n 1)
	[ -n "$out" ] || fail "'$cmd' printed nothing in the tree"
	printf '%s: %s\n' "${cmd%% *}" "$out"
done > "$SBX_META_TMP/versions.txt"
rm -rf "$R/tmp/sbx-home"
in_root su -s /bin/sh -c 'sudo -n true 2>/dev/null' app || fail "'sudo -n true' as app failed in the tree"

# ---- what would make two builds differ ----------------------------------------
# Backups written by useradd/usermod and dpkg/debconf, logs, caches.
rm -f "$R"/etc/passwd- "$R"/etc/group- "$R"/etc/shadow- "$R"/etc/gshadow- \
	"$R"/etc/subuid- "$R"/etc/subgid- \
	"$R"/var/lib/dpkg/*-old "$R"/var/cache/debconf/*-old \
	"$R"/var/cache/ldconfig/aux-cache
find "$R/var/log" -type f -delete
rm -rf "$R"/var/cache/apt/*.bin "$R"/root/.cache "$R"/root/.npm
# mmdebstrap empties /etc/machine-id, /tmp and /run and removes the apt lists
# and archives after this hook (cleanup step).
