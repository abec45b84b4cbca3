#!/bin/sh
# Installs every Debian package that building, testing and benchmarking sbx
# needs. Idempotent: it installs only what is missing, and does nothing (and
# needs no network) when everything is present. Run as root.
set -eu

# Packages by purpose. Keep this list the single source of truth.
BUILD="gcc make musl-tools linux-libc-dev pkg-config libsodium-dev libseccomp-dev libcmocka-dev libwebsockets-dev libjansson-dev libssl-dev libhttp-parser-dev libxxhash-dev"
SRCBUILD="dpkg-dev autoconf automake libtool gperf"
IMAGE="cpio lz4 busybox-static kmod qemu-system-x86 qemu-utils dropbear-bin openssh-sftp-server mmdebstrap erofs-utils e2fsprogs"
TEST="file bsdutils openssh-client curl socat iproute2 procps psmisc python3 nodejs chromium openssl"
BENCH="qemu-guest-agent openssh-server dropbear-bin socat valgrind linux-perf strace runc"
FUZZ="clang libclang-rt-14-dev"
# The OCI runtime's tests (tests/system/oci.sh): the engines that call it.
OCI="podman containerd conmon crun"

want="$BUILD $SRCBUILD $IMAGE $TEST $OCI"
case "${1:-}" in
--bench) want="$want $BENCH" ;;
--fuzz) want="$want $FUZZ" ;;
--all) want="$want $BENCH $FUZZ" ;;
esac

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done

# The SDK tests (tests/sdk) need npm; Debian packages it apart from nodejs,
# while a nodejs from elsewhere (NodeSource) carries its own and conflicts
# with Debian's: ask for the package only when there is no npm.
command -v npm >/dev/null 2>&1 || missing="$missing npm"

# `apt-get source` needs deb-src entries; add them next to the deb ones.
src=/etc/apt/sources.list.d/sbx-deb-src.sources
need_update=""
if [ ! -e "$src" ]; then
	cat >"$src" <<'EOT'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
	need_update=1
fi

[ -z "$missing" ] && [ -z "$need_update" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run scripts/deps.sh as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# apt_get ARGS...: apt-get, waiting (up to $SBX_APT_WAIT seconds, 600 by
# default) while another apt holds its lock, as apt-daily often does on a
# freshly booted machine, instead of failing at once.
apt_get() {
	waited=0
	log=$(mktemp)
	while :; do
		if apt-get "$@" >"$log" 2>&1; then
			cat "$log"
			rm -f "$log"
			return 0
		fi
		if ! grep -qE 'Could not get lock|Unable to acquire the dpkg frontend lock|Unable to lock' "$log"; then
			cat "$log" >&2
			rm -f "$log"
			return 1
		fi
		if [ "$waited" -ge "${SBX_APT_WAIT:-600}" ]; then
			echo "deps: another apt process still holds its lock after ${waited} s; giving up:" >&2
			cat "$log" >&2
			rm -f "$log"
			return 1
		fi
		[ "$waited" -eq 0 ] &&
			echo "deps: another apt process holds its lock (apt-daily?); waiting for it" >&2
		sleep "${SBX_APT_POLL:-5}"
		waited=$((waited + ${SBX_APT_POLL:-5}))
	done
}

apt_get update -q
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
apt_get install -y -q --no-install-recommends $missing
