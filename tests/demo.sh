#!/bin/bash
# make run: boot a sandbox, run a command in it, shut it down.
set -eu
cd "$(dirname "$0")/.."
SBX=build/sbx
ID=$($SBX create --memory 1024 --lifetime 5m)
trap '$SBX kill "$ID"' EXIT
echo "sandbox $ID is ready:"
$SBX info --json "$ID" | sed 's/.*"boot_ms":\([0-9]*\).*/  boot to ready: \1 ms (QEMU start to agent ready)/'
$SBX exec "$ID" -- sh -c 'echo "  guest kernel:  $(uname -sr)"; echo "  hostname:      $(hostname)"'
echo "shutting $ID down"
