#!/bin/sh
# Builds the minimal image's busybox into OUT (default build/busybox): Debian's
# busybox source package with Debian's own static configuration, plus
# FEATURE_WGET_TIMEOUT. Debian's busybox-static 1.35 leaves that feature
# out, and its wget then writes -T's number through a NULL pointer (a
# segfault, status 139: issue 18 item 17; Debian turned it on in
# 1.36.1-5). Cached: does nothing when OUT/busybox is there for this recipe.
set -eu
OUT=$(realpath -m "${1:-build/busybox}")
# Bump when the way busybox is built changes.
RECIPE=1
if [ -x "$OUT/busybox" ] && [ "$(cat "$OUT/.recipe" 2>/dev/null)" = "$RECIPE" ]; then
	exit 0
fi
rm -rf "$OUT/src"
mkdir -p "$OUT/src"
cd "$OUT/src"
apt-get source -q busybox >/dev/null 2>&1 || { echo "busybox: apt-get source busybox failed" >&2; exit 1; }
cd busybox-*/
cp debian/config/pkg/static .config
sed -i 's/^# CONFIG_FEATURE_WGET_TIMEOUT is not set$/CONFIG_FEATURE_WGET_TIMEOUT=y/' .config
grep -qx CONFIG_FEATURE_WGET_TIMEOUT=y .config ||
	{ echo "busybox: the static config has no FEATURE_WGET_TIMEOUT line to turn on" >&2; exit 1; }
yes '' | make -s oldconfig >/dev/null 2>&1
make -s -j"$(nproc)" busybox >/dev/null 2>&1 || { echo "busybox: the build failed" >&2; exit 1; }
cp busybox "$OUT/busybox.tmp"
mv "$OUT/busybox.tmp" "$OUT/busybox"
cd "$OUT"
rm -rf "$OUT/src"
echo "$RECIPE" > "$OUT/.recipe"
echo "busybox: built $OUT/busybox ($(./busybox | head -1 | cut -d' ' -f2)) with wget -T"
