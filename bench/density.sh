#!/bin/bash
# bench/density.sh: how many idle sandboxes fit in DENSITY_GIB of host
# memory, as markdown for bench/results.md: minimal sandboxes booted cold
# (`sbx create --cold`), then minimal clones (a plain `sbx create` once a
# template of the image and memory size exists, `sbx template create`).
# Each side starts sandboxes one after another (state in a temp dir) until
# the host memory they hold would pass the budget, or DENSITY_MAX are up
# (a cap that keeps the run short on a small TCG machine: then the count
# is extrapolated from the measured memory per sandbox, and says so). The
# host memory of a sandbox: the RSS of its QEMU and sbx-vsockd, plus the
# pages of the guest's RAM (a memfd) that QEMU has not mapped: a clone's
# memfd is filled with the template's pages by the launcher, and QEMU maps
# only those the guest touched since (for a booted sandbox, none is left
# out). Also create -> ready of the 1st and the Nth. Kills every sandbox
# it started, on failure too.
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

# KiB of the guest's RAM (QEMU $1's memfd) allocated in the host but not
# mapped by QEMU
memfd_unmapped() {
	local f a=0
	for f in /proc/"$1"/fd/*; do
		case $(readlink "$f") in
		*memfd:*) a=$(($(stat -L -c %b "$f") * 512 / 1024)); break ;;
		esac
	done
	[ "$a" -gt 0 ] || { say "QEMU $1 holds no memfd: its guest RAM cannot be counted"; exit 1; }
	awk -v a="$a" '/^[0-9a-f]+-[0-9a-f]+ / { m = ($6 ~ /memfd:/) } /^Rss:/ && m { r += $2 }
		END { print (a > r ? a - r : 0) }' "/proc/$1/smaps"
}

# "rss pss host" in KiB summed over QEMU and sbx-vsockd of every sandbox up
sum_mem() {
	local d id p u
	for d in "$SBX_STATE_DIR"/*/; do
		id=$(basename "$d")
		for p in "$(pid_of "$id" qemu)" "$(pid_of "$id" vsockd)"; do
			awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } END { print r, p, 0 }' "/proc/$p/smaps_rollup"
		done
		u=$(memfd_unmapped "$(pid_of "$id" qemu)") # set -e: a failure stops the script
		echo "0 0 $u"
	done >"$TMP/mem"
	awk '{ r += $1; p += $2; h += $1 + $3 } END { print r + 0, p + 0, h + 0 }' "$TMP/mem"
}

# run SIDE ARGS...: sandboxes up one after another (sbx create ARGS),
# then all killed; sets n first last rss pss host per fit how
run() {
	local side=$1 ms t0 id got mem
	shift
	n=0 rss=0 pss=0 host=0 per=0 first= last=
	while [ "$n" -lt "$MAX" ]; do
		# stop before the next sandbox would pass the budget
		[ "$n" -gt 0 ] && [ $((host + per)) -gt "$budget" ] && break
		id=$side$((n + 1))
		t0=$(now_ns)
		"$SBX" create --name "$id" --image minimal --lifetime 15m --memory "$MEM_MIB" "$@" \
			>/dev/null 2>"$TMP/create.err" ||
			{ say "sbx create of $side sandbox $((n + 1)) failed: $(cat "$TMP/create.err")"; exit 1; }
		ms=$((($(now_ns) - t0) / 1000000))
		got=$(sed -n 's/^template = //p' "$SBX_STATE_DIR/$id/meta")
		if [ "$side" = clone ] && [ "$got" != density ]; then
			say "$id: a clone of '$got', not of the template density"
			exit 1
		fi
		n=$((n + 1))
		[ -z "$first" ] && first=$ms
		last=$ms
		sleep "$SETTLE"
		mem=$(sum_mem) # a plain assignment: sum_mem's failure stops the script
		read -r rss pss host <<<"$mem"
		per=$((host / n))
		say "$side: $n up, create -> ready $ms ms; summed RSS $(mib "$rss") MiB, PSS $(mib "$pss") MiB, host memory $(mib "$host") MiB (load $(cut -d' ' -f1 /proc/loadavg))"
	done
	if [ $((host + per)) -gt "$budget" ]; then
		fit=$n how="measured"
	else
		fit=$((budget / per)) how="extrapolated: DENSITY_MAX=$MAX"
	fi
	for d in "$SBX_STATE_DIR"/*/; do "$SBX" kill "$(basename "$d")" >/dev/null; done
}

budget=$((GIB * 1024 * 1024))
run cold --cold
c_n=$n c_first=$first c_last=$last c_rss=$rss c_pss=$pss c_host=$host c_fit=$fit c_how=$how
t0=$(now_ns)
"$SBX" template create density --image minimal --memory "$MEM_MIB" >/dev/null
make_ms=$((($(now_ns) - t0) / 1000000))
run clone

echo "| idle minimal sandboxes, $MEM_MIB MiB each, in $GIB GiB of host memory | booted (\`--cold\`) | clones of a template (made in $make_ms ms) |"
echo "|---|---|---|"
echo "| sandboxes started, one after another | $c_n | $n |"
echo "| create → ready: 1st / last | $c_first ms / $c_last ms | $first ms / $last ms |"
echo "| summed RSS (QEMU + sbx-vsockd), $SETTLE s after the last was ready | $(mib "$c_rss") MiB: $(mib $((c_rss / c_n))) MiB each | $(mib "$rss") MiB: $(mib $((rss / n))) MiB each |"
echo "| summed PSS (pages shared between sandboxes counted once) | $(mib "$c_pss") MiB: $(mib $((c_pss / c_n))) MiB each | $(mib "$pss") MiB: $(mib $((pss / n))) MiB each |"
echo "| host memory (RSS + guest RAM QEMU has not mapped) | $(mib "$c_host") MiB: $(mib $((c_host / c_n))) MiB each | $(mib "$host") MiB: $(mib $((host / n))) MiB each |"
echo "| **sandboxes that fit in $GIB GiB by host memory** | **$c_fit** ($c_how) | **$fit** ($how) |"
echo "| (by RSS; by PSS, extrapolated) | $((budget / (c_rss / c_n))); $((budget / (c_pss / c_n))) | $((budget / (rss / n))); $((budget / (pss / n))) |"
echo "density $c_n $c_first $c_last $c_rss $c_pss $c_fit $((budget / (c_pss / c_n))) $c_host" >>"$KV"
echo "density.clone $n $first $last $rss $pss $fit $((budget / (pss / n))) $host" >>"$KV"
