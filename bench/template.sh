#!/bin/bash
# bench/template.sh: create -> ready of a minimal sandbox booted cold
# (`sbx create --cold`) against one restored from a template (a plain
# `sbx create` with a template of the same image and memory), alternately
# in the same run, as markdown for bench/results.md; and what making the
# template costs. Boots its own sandboxes (state and data in a temp dir)
# and leaves nothing running. create -> ready is `sbx create`'s wall time
# with a duration lifetime (it returns once the agent answers; a clone's
# agent has then taken its identity).
#
# Environment: TMPL_N (5 pairs), TMPL_MIB (1024).
set -eu
cd "$(dirname "$0")/.."
TMPL_N=${TMPL_N:-5}
TMPL_MIB=${TMPL_MIB:-1024}
. bench/lib.sh
bench_sandboxes template
export SBX_IMAGE=minimal

median() { sort -g | awk '{ v[NR] = $1 } END { print NR ? v[int(0.5 * (NR - 1) + 0.5) + 1] : 0 }'; }
range() { sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s–%s", lo, hi }'; }

# create_ms NAME TEMPLATE ARGS...: "ms rss_kib": sbx create's wall time and
# its QEMU's RSS once ready; the sandbox must be a clone of TEMPLATE ("":
# booted), answers, is killed
create_ms() {
	local id=$1 want=$2 t0 t1 got rss
	shift 2
	t0=$(now_ns)
	"$SBX" create --name "$id" --memory "$TMPL_MIB" --lifetime 10m "$@" >/dev/null
	t1=$(now_ns)
	got=$(sed -n 's/^template = //p' "$SBX_STATE_DIR/$id/meta")
	if [ "$got" != "$want" ]; then
		say "$id: a clone of '$got', not of '$want'"
		return 1
	fi
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$(sed -n 's/^qemu_pid = //p' "$SBX_STATE_DIR/$id/meta")/status")
	"$SBX" exec "$id" -- true
	"$SBX" kill "$id" >/dev/null
	echo "$(((t1 - t0) / 1000000)) $rss"
}

t0=$(now_ns)
"$SBX" template create bench --memory "$TMPL_MIB" >/dev/null
make_ms=$((($(now_ns) - t0) / 1000000))
size=$(stat -c %s "$SBX_DATA_DIR/templates/bench/memory.state")
# the RAM apart (memory.ram, sparse): its bytes on disk
ram=$(($(stat -c %b "$SBX_DATA_DIR/templates/bench/memory.ram") * 512))
: >"$TMP/pairs"
for i in $(seq "$TMPL_N"); do
	c=$(create_ms "cold-$i" "" --cold)
	w=$(create_ms "warm-$i" bench)
	echo "$c $w" >>"$TMP/pairs"
	say "pair $i: cold_ms cold_rss_kib template_ms template_rss_kib: $c $w"
done
col() { awk -v c="$1" '{ print $c }' "$TMP/pairs"; }
mib() { awk '{ printf "%.0f\n", $1 / 1024 }'; }
cm=$(col 1 | median) wm=$(col 3 | median)
ratio=$(awk '{ print $3 / $1 }' "$TMP/pairs" | median)
echo "| minimal, $TMPL_MIB MiB, TCG (pairs: $TMPL_N) | side | median | range | ratio to cold |"
echo "|---|---|---|---|---|"
echo "| create → ready | cold boot (\`--cold\`) | $cm ms | $(col 1 | range) ms | 1 |"
echo "| create → ready | from a template | $wm ms | $(col 3 | range) ms | $(printf '%.2f' "$ratio") |"
echo "| QEMU RSS when ready | cold boot | $(col 2 | mib | median) MiB | $(col 2 | mib | range) MiB | 1 |"
echo "| QEMU RSS when ready | from a template | $(col 4 | mib | median) MiB | $(col 4 | mib | range) MiB |" \
	"$(awk '{ print $4 / $2 }' "$TMP/pairs" | median | xargs printf '%.2f') |"
echo
echo "Making the template (\`sbx template create\`: boot, 1 s settling, save):" \
	"$make_ms ms; its stream (memory.state, the devices' state)" \
	"$(awk -v b="$size" 'BEGIN { printf "%.2f MB", b / 1e6 }'), its RAM's data (memory.ram)" \
	"$(awk -v b="$ram" 'BEGIN { printf "%.0f MB", b / 1e6 }')."
echo "tmpl.create $TMPL_N $cm $wm $ratio $make_ms $size $ram" >>"$KV"
