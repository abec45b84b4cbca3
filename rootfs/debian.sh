#!/bin/bash
# Builds the Debian 12 (bookworm) base image of sandboxes: a read-only erofs
# file (no root mounts: mkfs.erofs reads a directory) with bash, Python,
# Node.js + npm, Deno, git, curl, sudo, locales, the user `app` (uid 1000,
# passwordless sudo) and sbx-init as /sbin/sbx-init, plus a metadata file.
# Packages come by name from the Debian archive the host's apt uses
# (mmdebstrap); Deno is the Linux x86-64 binary of the npm registry's
# @deno/linux-x64-glibc package, pinned below and cached under build/cache.
# Reproducible: the same inputs and archive state give the same image bytes.
# Cheap when up to date: a stamp holds a hash of the inputs.
#
# Usage: rootfs/debian.sh [OUT_DIR [SBX_INIT]]
#   OUT_DIR   default build/images/debian; gets base.erofs (or base.ext4),
#             base.meta (versions, dates, digest) and base.packages
#   SBX_INIT  default build/sbx-init (the static agent binary)
# Environment:
#   SBX_DEBIAN_FORMAT=erofs|ext4  image format (default erofs, lz4hc)
#   SBX_DEBIAN_EPOCH=SECONDS      SOURCE_DATE_EPOCH of the image (default: the
#                                 newest Date of the archive's InRelease files)
#   SBX_DEBIAN_REFRESH=1          rebuild even when the inputs are unchanged
#                                 (e.g. to pick up Debian security updates)
#   SBX_DEBIAN_KEEP_TREE=1        keep the unpacked tree in OUT_DIR/tree
# Needs root (the tree's owners and mmdebstrap's chroot); installs
# mmdebstrap and erofs-utils itself when they are missing.
set -eu
cd "$(dirname "$0")/.."
export LC_ALL=C

OUT=$(realpath -m "${1:-build/images/debian}")
SBX_INIT=$(realpath -m "${2:-build/sbx-init}")
CACHE=$(realpath -m build/cache)
FORMAT=${SBX_DEBIAN_FORMAT:-erofs}
SUITE=bookworm
PKGLIST=rootfs/debian/packages
HOOK=$PWD/rootfs/debian/customize.sh

# Deno: the version and the registry's integrity (npm view
# @deno/linux-x64-glibc@VERSION dist.integrity) of its tarball.
DENO_VERSION=2.9.6
DENO_INTEGRITY=sha512-3md4TKLCuzsLDmfOoC5KN7NAZaxSVkMgm64vg6foD00JBADCpYS2/5QqXfzgnP5ZQz3iLP9vBQJtEgc116OAoQ==
DENO_PKG=@deno/linux-x64-glibc
# A fixed file-system UUID (the image is found by path, never by UUID).
FS_UUID=5b8c3e2a-6d1f-4a57-9c0e-2f4b7a9d1e63

say() { echo "debian-image: $*" >&2; }
fail() { say "$*"; exit 1; }

case $FORMAT in erofs|ext4) ;; *) fail "SBX_DEBIAN_FORMAT=$FORMAT: use erofs or ext4" ;; esac
[ -e "$SBX_INIT" ] || fail "$SBX_INIT is missing (make build/sbx-init)"
[ -r "$PKGLIST" ] || fail "$PKGLIST is missing"
[ -x "$HOOK" ] || fail "$HOOK is missing or not executable"
IMAGE=$OUT/base.$FORMAT

# ---- the Debian archive the host's apt uses ------------------------------------
# Prints "URI SUITE COMPONENTS..." for every enabled deb entry of bookworm,
# bookworm-updates and bookworm-security in the one-line and deb822 files.
host_mirrors() {
	local f
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { i = 2
			if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; i++ }
			out = $i " " $(i + 1); for (j = i + 2; j <= NF; j++) out = out " " $j
			print out }' "$f"
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{ types = uris = suites = comps = ""; enabled = "yes"
		  for (i = 1; i <= NF; i++) {
			l = $i; if (l ~ /^#/) continue
			k = tolower(l); sub(/:.*/, "", k); v = l; sub(/^[^:]*:[ \t]*/, "", v)
			if (k == "types") types = v; else if (k == "uris") uris = v
			else if (k == "suites") suites = v; else if (k == "components") comps = v
			else if (k == "enabled") enabled = tolower(v)
		  }
		  if (enabled == "no" || (" " types " ") !~ / deb /) next
		  nu = split(uris, u, /[ \t]+/); ns = split(suites, s, /[ \t]+/)
		  for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++)
			if (u[a] != "" && s[b] != "") print u[a] " " s[b] " " comps
		}' "$f"
	done
}
MIRRORS=$(host_mirrors | awk -v s="$SUITE" \
	'$2 == s || $2 == s "-updates" || $2 == s "-security" { sub(/\/+ /, " "); print }' | sort -u)
[ -n "$MIRRORS" ] || fail "no $SUITE entries in /etc/apt/sources.list*: cannot tell which Debian archive to use"

# The descriptor sbx reads (launcher/image.c, docs/IMAGES.md): the file
# system, and who commands run as, as in the product we model.
mkdir -p "$OUT"
printf '# The Debian image, built by rootfs/debian.sh.\nbase = %s\nuser = app\nworkdir = /home/app\n' \
	"$(basename "$IMAGE")" > "$OUT/image"

# ---- up to date? ------------------------------------------------------------------
stamp=$( (echo "$FORMAT $SUITE $DENO_VERSION $DENO_INTEGRITY $FS_UUID ${SBX_DEBIAN_EPOCH:-}"
	echo "$MIRRORS"
	cat rootfs/debian.sh rootfs/debian/* "$SBX_INIT") | sha256sum | cut -d' ' -f1)
if [ "${SBX_DEBIAN_REFRESH:-}" != 1 ] && [ -e "$IMAGE" ] && [ -e "$OUT/base.meta" ] &&
	[ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
	touch "$IMAGE"	# newer than its prerequisites for make
	say "up to date ($IMAGE)"
	exit 0
fi

[ "$(id -u)" = 0 ] || fail "needs root: mmdebstrap --mode=root and a tree owned by its real users (run as root)"

# ---- tools -----------------------------------------------------------------------
need=""
command -v mmdebstrap >/dev/null || need="$need mmdebstrap"
[ "$FORMAT" = erofs ] && ! command -v mkfs.erofs >/dev/null && need="$need erofs-utils"
[ "$FORMAT" = ext4 ] && ! command -v mkfs.ext4 >/dev/null && need="$need e2fsprogs"
if [ -n "$need" ]; then
	say "installing$need"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $need >&2 ||
		fail "apt-get install$need failed"
fi

t0=$(date +%s)

# ---- Deno: fetched once with npm pack, checked against the pinned integrity ------
DENO_DIR=$CACHE/deno
DENO_TGZ=$DENO_DIR/deno-linux-x64-glibc-$DENO_VERSION.tgz
DENO_BIN=$DENO_DIR/$DENO_VERSION/deno
integrity() { echo "sha512-$(printf '%b' "$(sha512sum < "$1" | cut -d' ' -f1 | sed 's/../\\x&/g')" | base64 -w0)"; }
if [ ! -e "$DENO_TGZ" ] || [ "$(integrity "$DENO_TGZ")" != "$DENO_INTEGRITY" ]; then
	mkdir -p "$DENO_DIR"
	rm -f "$DENO_TGZ"
	if command -v npm >/dev/null; then
		say "fetching $DENO_PKG@$DENO_VERSION (npm pack)"
		(cd "$DENO_DIR" && npm pack --ignore-scripts --silent "$DENO_PKG@$DENO_VERSION" >/dev/null) ||
			fail "npm pack $DENO_PKG@$DENO_VERSION failed"
	else
		url="https://registry.npmjs.org/$DENO_PKG/-/linux-x64-glibc-$DENO_VERSION.tgz"
		say "fetching $url (no npm here)"
		curl -fsSL -o "$DENO_TGZ.tmp" "$url" || fail "downloading $url failed"
		mv "$DENO_TGZ.tmp" "$DENO_TGZ"
	fi
	[ -e "$DENO_TGZ" ] || fail "$DENO_TGZ was not written"
	got=$(integrity "$DENO_TGZ")
	[ "$got" = "$DENO_INTEGRITY" ] || { rm -f "$DENO_TGZ"
		fail "$DENO_PKG@$DENO_VERSION: integrity $got, expected $DENO_INTEGRITY"; }
	rm -rf "$DENO_DIR/$DENO_VERSION"
fi
if [ ! -x "$DENO_BIN" ]; then
	mkdir -p "$DENO_DIR/$DENO_VERSION.tmp"
	tar -xzf "$DENO_TGZ" -C "$DENO_DIR/$DENO_VERSION.tmp" --no-same-owner package/deno ||
		fail "$DENO_TGZ has no package/deno"
	rm -rf "$DENO_DIR/$DENO_VERSION"
	mv "$DENO_DIR/$DENO_VERSION.tmp/package" "$DENO_DIR/$DENO_VERSION"
	rmdir "$DENO_DIR/$DENO_VERSION.tmp"
	chmod 0755 "$DENO_BIN"
fi

# ---- the archive's state: its newest Release date is the image's epoch --------
if [ -n "${SBX_DEBIAN_EPOCH:-}" ]; then
	EPOCH=$SBX_DEBIAN_EPOCH
else
	EPOCH=0
	while read -r uri suite _; do
		d=$(curl -fsS "$uri/dists/$suite/InRelease" | sed -n 's/^Date: //p' | head -n 1) || true
		[ -n "$d" ] || fail "cannot read the Date of $uri/dists/$suite/InRelease (set SBX_DEBIAN_EPOCH to build anyway)"
		s=$(date -u -d "$d" +%s) || fail "bad Date '$d' in $uri/dists/$suite/InRelease"
		[ "$s" -gt "$EPOCH" ] && EPOCH=$s
	done <<< "$MIRRORS"
fi
export SOURCE_DATE_EPOCH=$EPOCH
say "archive state $(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ) (SOURCE_DATE_EPOCH=$EPOCH)"

# ---- the tree: mmdebstrap, then customize.sh -------------------------------------
TREE=$OUT/tree
META_TMP=$OUT/meta.tmp
DEBS=$CACHE/debian-archives	# .deb files of the last build: a rebuild downloads only lists
# A failed mmdebstrap may leave its mounts (/proc, /sys, /dev) in the tree:
# never delete through them.
remove_tree() {
	if grep -q " $TREE/" /proc/self/mounts; then
		fail "file systems are still mounted under $TREE (umount them first): $(grep " $TREE/" /proc/self/mounts | cut -d' ' -f2 | tr '\n' ' ')"
	fi
	rm -rf --one-file-system "$TREE"
}
remove_tree
rm -rf "$META_TMP" "$OUT/stamp"
mkdir -p "$OUT" "$META_TMP" "$DEBS"
include=$(sed 's/#.*//' "$PKGLIST" | tr -s ' \t\n' '\n' | grep -v '^$' | paste -sd, -)
mirror_args=()
while read -r line; do mirror_args+=("deb $line"); done <<< "$MIRRORS"
# Documentation, manual pages and message translations are left out, as in
# Debian's slim container images; the rule stays in the image for apt.
slim=(--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
	--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
	--dpkgopt='path-exclude=/usr/share/groff/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
	--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias')
t1=$(date +%s)
say "mmdebstrap $SUITE into $TREE"
SBX_DENO_BIN=$DENO_BIN SBX_INIT_BIN=$SBX_INIT SBX_META_TMP=$META_TMP \
mmdebstrap --mode=root --variant=minbase --format=directory --quiet \
	--include="$include" "${slim[@]}" \
	--skip=essential/unlink \
	--setup-hook="mkdir -p \"\$1/var/cache/apt/archives\" && cp -al '$DEBS/.' \"\$1/var/cache/apt/archives/\"" \
	--customize-hook="$HOOK \"\$1\"" \
	--customize-hook="rm -f '$DEBS'/*.deb && cp -al \"\$1\"/var/cache/apt/archives/*.deb '$DEBS/'" \
	"$SUITE" "$TREE" "${mirror_args[@]}" >&2 ||
	fail "mmdebstrap failed (see above)"
t2=$(date +%s)

# ---- checks inside the tree ----------------------------------------------------------
for p in /usr/bin/python3 /usr/bin/node /usr/bin/npm /usr/local/bin/deno /usr/bin/git \
	/usr/bin/bash /usr/bin/sudo /usr/bin/curl /usr/sbin/dropbear /usr/lib/sftp-server \
	/sbin/sbx-init /etc/os-release /home/app; do
	[ -e "$TREE$p" ] || fail "$p is missing from the tree"
done
grep -q '^ID=debian$' "$TREE/etc/os-release" || fail "/etc/os-release is not Debian's"
grep -q '^app:x:1000:1000:' "$TREE/etc/passwd" || fail "user app (uid 1000) is missing"
# The versions were read by customize.sh, with the chroot's /proc mounted.
[ -s "$META_TMP/versions.txt" ] || fail "customize.sh recorded no versions"

# Every file's mtime at most the epoch (files written during the build get
# it); older ones keep the time dpkg gave them, so nothing looks out of date.
find "$TREE" -newermt "@$EPOCH" -exec touch --no-dereference --date="@$EPOCH" {} +
nfiles=$(find "$TREE" | wc -l)
treekb=$(du -sk "$TREE" | cut -f1)

# ---- the image -----------------------------------------------------------------------
t3=$(date +%s)
rm -f "$IMAGE.tmp"
case $FORMAT in
erofs)
	# lz4hc: the guest kernel's erofs decompresses lz4 (CONFIG_EROFS_FS_ZIP);
	# it has no LZMA. SOURCE_DATE_EPOCH makes mkfs.erofs clamp mtimes and
	# fixes the build time; -U fixes the UUID.
	mkfs.erofs --quiet -zlz4hc -U "$FS_UUID" "$IMAGE.tmp" "$TREE" >&2 ||
		fail "mkfs.erofs failed"
	;;
ext4)
	# Room for the tree plus a quarter; E2FSPROGS_FAKE_TIME, -U and the hash
	# seed fix what mke2fs would otherwise take from the clock and urandom.
	mb=$(( treekb * 5 / 4 / 1024 + 64 ))
	inodes=$(( nfiles * 5 / 4 + 1024 ))
	E2FSPROGS_FAKE_TIME=$EPOCH mkfs.ext4 -q -F -t ext4 -b 4096 -N "$inodes" -m 0 \
		-L sbx-base -U "$FS_UUID" -E "hash_seed=$FS_UUID,root_owner=0:0,lazy_itable_init=0" \
		-d "$TREE" "$IMAGE.tmp" "${mb}M" >&2 || fail "mkfs.ext4 failed"
	;;
esac
if [ "$FORMAT" = erofs ]; then
	fsck.erofs "$IMAGE.tmp" >/dev/null || fail "fsck.erofs finds $IMAGE.tmp damaged"
fi
mv "$IMAGE.tmp" "$IMAGE"
t4=$(date +%s)

# ---- metadata ----------------------------------------------------------------------
digest=$(sha256sum "$IMAGE" | cut -d' ' -f1)
cp "$META_TMP/packages.txt" "$OUT/base.packages"
{
	echo "# The Debian base image of sbx sandboxes, built by rootfs/debian.sh."
	echo "image=$(basename "$IMAGE")"
	echo "format=$FORMAT$([ "$FORMAT" = erofs ] && echo " lz4hc")"
	echo "sha256=$digest"
	echo "bytes=$(stat -c %s "$IMAGE")"
	echo "tree_kib=$treekb"
	echo "files=$nfiles"
	echo "suite=$SUITE"
	echo "source_date_epoch=$EPOCH ($(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ), the newest archive Release date)"
	while read -r line; do echo "mirror=deb $line"; done <<< "$MIRRORS"
	while IFS=$'\t' read -r f d; do echo "release=$f $d"; done < "$META_TMP/releases.txt"
	echo "deno=$DENO_VERSION $DENO_PKG $DENO_INTEGRITY"
	echo "sbx_init_sha256=$(sha256sum < "$SBX_INIT" | cut -d' ' -f1)"
	sed 's/^/version=/' "$META_TMP/versions.txt"
	echo "packages=$(wc -l < "$OUT/base.packages") (base.packages)"
	echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( t4 - t0 )) s (mmdebstrap $(( t2 - t1 )) s, $FORMAT $(( t4 - t3 )) s)"
} > "$OUT/base.meta"
rm -rf "$META_TMP"
[ "${SBX_DEBIAN_KEEP_TREE:-}" = 1 ] || remove_tree
echo "$stamp" > "$OUT/stamp"
say "$IMAGE: $(stat -c %s "$IMAGE") bytes, $nfiles files, sha256 $digest, $(( t4 - t0 )) s"
