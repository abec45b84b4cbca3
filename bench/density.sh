#!/bin/bash
# bench/density.sh: how many idle sandboxes fit in DENSITY_GIB of host
# memory, as markdown for bench/results.md. Boots minimal sandboxes one
# after another (state in a temp dir) until the summed RSS of their QEMU
# and sbx-vsockd processes would pass the budget, or DENSITY_MAX are up
# (a cap that keeps the run short on a small TCG machine: then the count
# is extrapolated from the measured RSS per sandbox, and says so). Also
# create -> ready of the 1st and the Nth. Kills every sandbox it started,
# on failure too.
#
# Environment: DENSITY_GIB (8), DENSITY_MAX (12), DENSITY_SETTLE_S (5),
# MEM_MIB (1024).
set -eu
cd "$(dirname "$0")/.."
GIB=${DENSITY_GIB:-8}
MAX=${DENSITY_MAX:-12}
SETTLE=${DENSITY_SETTLE_S:-5}
MEM_MIB=${MEM_MIB:-1024}
. bench/lib.sh
bench_sandboxes density

mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
pid_of() { sed -n "s/^$2_pid = //p" "$SBX_STATE_DIR/$1/meta"; }

# "rss pss" in KiB summed over QEMU and sbx-vsockd of every sandbox up
sum_mem() {
	local d id p
	for d in "$SBX_STATE_DIR"/*/; do
		id=$(basename "$d")
		for p in "$(pid_of "$id" qemu)" "$(pid_of "$id" vsockd)"; do
			awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } END { print r, p }' "/proc/$p/smaps_rollup"
		done
	done | awk '{ r += $1; p += $2 } END { print r + 0, p + 0 }'
}

budget=$((GIB * 1024 * 1024))
n=0 rss=0 pss=0 per=0 first= last=
while [ "$n" -lt "$MAX" ]; do
	# stop before the next sandbox would pass the budget
	[ "$n" -gt 0 ] && [ $((rss + per)) -gt "$budget" ] && break
	t0=$(now_ns)
	"$SBX" create --name "d$((n + 1))" --image minimal --lifetime 15m --memory "$MEM_MIB" >/dev/null \
		2>"$TMP/create.err" || { say "sbx create of sandbox $((n + 1)) failed: $(cat "$TMP/create.err")"; exit 1; }
	ms=$((($(now_ns) - t0) / 1000000))
	n=$((n + 1))
	[ -z "$first" ] && first=$ms
	last=$ms
	sleep "$SETTLE"
	read -r rss pss <<<"$(sum_mem)"
	per=$((rss / n))
	say "$n up, create -> ready $ms ms; summed RSS $(mib "$rss") MiB, PSS $(mib "$pss") MiB (load $(cut -d' ' -f1 /proc/loadavg))"
done
if [ $((rss + per)) -gt "$budget" ]; then
	fit=$n how="measured: the next one would pass ${GIB} GiB"
else
	fit=$((budget / per)) how="extrapolated from the RSS per sandbox: the run stops at DENSITY_MAX=$MAX"
fi
fit_pss=$((budget / (pss / n)))
echo "| idle minimal sandboxes, $MEM_MIB MiB each, in $GIB GiB of host memory | |"
echo "|---|---|"
echo "| sandboxes booted, one after another | $n |"
echo "| create → ready: 1st / last (sandbox $n) | $first ms / $last ms |"
echo "| summed RSS (QEMU + sbx-vsockd), $SETTLE s after the last was ready | $(mib "$rss") MiB: $(mib "$per") MiB per sandbox |"
echo "| summed PSS (pages shared between sandboxes counted once) | $(mib "$pss") MiB: $(mib $((pss / n))) MiB per sandbox |"
echo "| **sandboxes that fit in $GIB GiB by RSS** | **$fit** ($how) |"
echo "| (by PSS, extrapolated) | $fit_pss |"
echo "density $n $first $last $rss $pss $fit $fit_pss" >>"$KV"
