#!/bin/sh
# Builds static libsodium and libseccomp against musl from Debian's source
# packages into PREFIX (default build/musl). Debian's own .a files reference
# glibc fortify symbols and do not link with musl. Cached: when both
# libraries of the current recipe are already there, it only marks them up
# to date (make runs it again whenever it is newer than they are).
set -eu
PREFIX=$(realpath -m "${1:-build/musl}")
# Bump when the way the libraries are built changes: a cached build of an
# older recipe is rebuilt.
RECIPE=5
if [ "$(cat "$PREFIX/.recipe" 2>/dev/null)" != "$RECIPE" ]; then
	rm -f "$PREFIX/lib/libsodium.a" "$PREFIX/lib/libseccomp.a"
fi
if [ -e "$PREFIX/lib/libsodium.a" ] && [ -e "$PREFIX/lib/libseccomp.a" ]; then
	touch "$PREFIX/lib/libsodium.a" "$PREFIX/lib/libseccomp.a"
	exit 0
fi

# musl-gcc does not search /usr/include; give it just the kernel headers.
KHDR="$PREFIX/kernel-headers"
mkdir -p "$KHDR" "$PREFIX/src"
for d in /usr/include/linux /usr/include/asm-generic \
	/usr/include/$(gcc -print-multiarch)/asm; do
	ln -sfn "$d" "$KHDR/$(basename "$d")"
done
export CC="musl-gcc -isystem $KHDR"
# No unwind tables (as sbx-init's own objects): nothing in the guest unwinds
# C, and the tables were 7 KiB of sbx-init.
NOUNWIND="-fno-asynchronous-unwind-tables -fno-unwind-tables"
export CFLAGS="-Os -fPIE -ffunction-sections -fdata-sections $NOUNWIND"
# libsodium's BLAKE2b at -O2: verified file transfers run it at both ends,
# and it is ~15% faster than at -Os for 0.8 KiB more of sbx-init. The rest
# of libsodium (Ed25519, SHA-2: once per connection) at -Os, 3.4 KiB less.
# Its two files get every flag configure chose (-fno-strict-aliasing,
# -fvisibility=hidden, ...) with -O2 for -Os.
BLAKE2B_OBJ="crypto_generichash/blake2b/ref/libsodium_la-blake2b-compress-ref.lo
	crypto_generichash/blake2b/ref/libsodium_la-blake2b-ref.lo"
jobs=$(nproc)

cd "$PREFIX/src"
if [ ! -e "$PREFIX/lib/libsodium.a" ]; then
	rm -rf libsodium-*
	apt-get source -q libsodium >/dev/null 2>&1 ||
		{ echo "musl-libs: apt-get source libsodium failed" >&2; exit 1; }
	(cd libsodium-*/ && ./autogen.sh -s >/dev/null 2>&1 || autoreconf -fi >/dev/null &&
		./configure -q --prefix="$PREFIX" --disable-shared \
			--enable-static --disable-pie --disable-ssp >/dev/null &&
		make -s -C src/libsodium $BLAKE2B_OBJ CFLAGS="$(sed -n 's/^CFLAGS = //p' \
			src/libsodium/Makefile | sed 's/-Os/-O2/')" >/dev/null &&
		make -s -j"$jobs" >/dev/null && make -s install >/dev/null)
fi
if [ ! -e "$PREFIX/lib/libseccomp.a" ]; then
	rm -rf libseccomp-*
	apt-get source -q libseccomp >/dev/null 2>&1 ||
		{ echo "musl-libs: apt-get source libseccomp failed" >&2; exit 1; }
	(cd libseccomp-*/ && { [ -x configure ] || autoreconf -fi >/dev/null; } &&
		./configure -q --prefix="$PREFIX" --disable-shared --enable-static \
			>/dev/null &&
		make -s -j"$jobs" -C src >/dev/null &&
		make -s -C src install >/dev/null && make -s -C include install >/dev/null)
fi
echo "$RECIPE" > "$PREFIX/.recipe"
echo "musl-libs: libsodium and libseccomp installed in $PREFIX"
