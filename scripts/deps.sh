#!/bin/sh
# Installs every Debian package that building, testing and benchmarking sbx
# needs. Idempotent: it installs only what is missing, and does nothing (and
# needs no network) when everything is present. Run as root.
set -eu

# Packages by purpose. Keep this list the single source of truth.
BUILD="gcc make musl-tools linux-libc-dev pkg-config libsodium-dev libseccomp-dev libcmocka-dev libwebsockets-dev libjansson-dev"
SRCBUILD="dpkg-dev autoconf automake libtool gperf"
IMAGE="cpio busybox-static kmod qemu-system-x86 dropbear-bin openssh-sftp-server"
TEST="file bsdutils openssh-client curl socat iproute2 procps psmisc python3 nodejs"
BENCH="qemu-guest-agent openssh-server dropbear-bin socat valgrind linux-perf strace"
FUZZ="clang libclang-rt-14-dev"

want="$BUILD $SRCBUILD $IMAGE $TEST"
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
apt-get update -q
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
apt-get install -y -q --no-install-recommends $missing
