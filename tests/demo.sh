#!/bin/bash
# make run: boot a sandbox of the Debian image, show what is in it, shut
# it down (docs/IMAGES.md; `sbx create --image minimal` for busybox alone).
set -eu
cd "$(dirname "$0")/.."
SBX=build/sbx
ID=$($SBX create --image debian --memory 1024 --lifetime 5m)
trap '$SBX kill "$ID"' EXIT
echo "sandbox $ID is ready:"
$SBX info --json "$ID" | sed 's/.*"boot_ms":\([0-9]*\).*/  boot to ready: \1 ms (QEMU start to agent ready)/'
$SBX exec "$ID" -- bash -c '. /etc/os-release
	echo "  system:        $PRETTY_NAME, kernel $(uname -r)"
	echo "  hostname:      $(hostname), user $(id -un)"
	echo "  python3:       $(python3 --version)"
	echo "  node:          $(node --version)"
	echo "  deno:          $(deno --version | head -1)"'
echo "shutting $ID down"
