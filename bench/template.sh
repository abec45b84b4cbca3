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
# Each pair also times a clone that takes a spare (a second template made
# with --spares 1, launcher/spare.h).
#
# Environment: TMPL_N (5 pairs), TMPL_MIB (1024); TMPL_BASE, another
# build directory (a worktree's build/ with its images) to compare with:
# each pair then runs it too, in turn first or second, with a template
# and state of its own, and the table has its rows (an A/B in one run:
# the machine's load moves both alike).
set -eu
cd "$(dirname "$0")/.."
TMPL_N=${TMPL_N:-5}
TMPL_MIB=${TMPL_MIB:-1024}
TMPL_BASE=${TMPL_BASE:+$(realpath "$TMPL_BASE")}
. bench/lib.sh
bench_sandboxes template
export SBX_IMAGE=minimal
NEW_SBX=$SBX NEW_STATE=$SBX_STATE_DIR NEW_DATA=$SBX_DATA_DIR
# side new|base: the build, state and data directories the next commands use
side() {
	if [ "$1" = base ]; then
		SBX=$TMPL_BASE/sbx SBX_STATE_DIR=$TMP/base/state SBX_DATA_DIR=$TMP/base/data
	else
		SBX=$NEW_SBX SBX_STATE_DIR=$NEW_STATE SBX_DATA_DIR=$NEW_DATA
	fi
}
if [ -n "$TMPL_BASE" ]; then
	[ -x "$TMPL_BASE/sbx" ] || { say "TMPL_BASE: no sbx in $TMPL_BASE"; exit 1; }
	# the base's sandboxes go at exit too
	trap 'side base; for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] &&
		"$SBX" kill "$(basename "$d")" >/dev/null 2>&1; done; side new; bench_cleanup' EXIT
fi

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

# wait_spare: until template benchs has a spare waiting (the only template
# with spares here), at most 60 s
wait_spare() {
	local n=0
	until ls "$SBX_STATE_DIR"/*/spare.ready >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 600 ] || { say "no spare of benchs after 60 s"; return 1; }
		sleep 0.1
	done
}

# spare_ms: as create_ms, for a clone that takes a spare of benchs (no
# --name: it has the spare's id); then waits until the next spare is made,
# so that no refill runs behind the next measurement
spare_ms() {
	local t0 t1 id rss
	wait_spare || return 1
	t0=$(now_ns)
	id=$("$SBX" create --from benchs --memory "$TMPL_MIB" --lifetime 10m)
	t1=$(now_ns)
	if [ "$(sed -n 's/^from_spare = //p' "$SBX_STATE_DIR/$id/meta")" != yes ]; then
		say "$id did not take a spare"
		return 1
	fi
	rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$(sed -n 's/^qemu_pid = //p' "$SBX_STATE_DIR/$id/meta")/status")
	"$SBX" exec "$id" -- true
	"$SBX" kill "$id" >/dev/null
	wait_spare || return 1
	echo "$(((t1 - t0) / 1000000)) $rss"
}

if [ -n "$TMPL_BASE" ]; then
	side base
	t0=$(now_ns)
	"$SBX" template create bench --memory "$TMPL_MIB" >/dev/null
	base_make_ms=$((($(now_ns) - t0) / 1000000))
	base_ram=$(($(stat -c %b "$SBX_DATA_DIR/templates/bench/memory.ram") * 512))
	side new
fi
t0=$(now_ns)
"$SBX" template create bench --memory "$TMPL_MIB" >/dev/null
make_ms=$((($(now_ns) - t0) / 1000000))
size=$(stat -c %s "$SBX_DATA_DIR/templates/bench/memory.state")
# the RAM apart (memory.ram, sparse): its bytes on disk
ram=$(($(stat -c %b "$SBX_DATA_DIR/templates/bench/memory.ram") * 512))
# the same template again, with a spare (launcher/spare.h), its filler
# done before anything is measured (bench_cleanup removes it at exit)
"$SBX" template create benchs --memory "$TMPL_MIB" --spares 1 >/dev/null
wait_spare
: >"$TMP/pairs"
: >"$TMP/base-pairs"
for i in $(seq "$TMPL_N"); do
	order=new
	if [ -n "$TMPL_BASE" ] && [ $((i % 2)) = 1 ]; then
		order="base new"
	elif [ -n "$TMPL_BASE" ]; then
		order="new base"
	fi
	for s in $order; do
		side "$s"
		c=$(create_ms "cold-$i" "" --cold)
		w=$(create_ms "warm-$i" bench --from bench)
		if [ "$s" = base ]; then
			echo "$c $w" >>"$TMP/base-pairs"
			say "pair $i (base): cold_ms cold_rss_kib template_ms template_rss_kib: $c $w"
		else
			p=$(spare_ms)
			echo "$c $w $p" >>"$TMP/pairs"
			say "pair $i${TMPL_BASE:+ ($s)}: cold_ms cold_rss_kib template_ms template_rss_kib" \
				"spare_ms spare_rss_kib: $c $w $p"
		fi
	done
	side new
done
col() { awk -v c="$1" '{ print $c }' "$TMP/pairs"; }
mib() { awk '{ printf "%.0f\n", $1 / 1024 }'; }
cm=$(col 1 | median) wm=$(col 3 | median)
ratio=$(awk '{ print $3 / $1 }' "$TMP/pairs" | median)
echo "| minimal, $TMPL_MIB MiB, TCG (pairs: $TMPL_N) | side | median | range | ratio to cold |"
echo "|---|---|---|---|---|"
echo "| create → ready | cold boot (\`--cold\`) | $cm ms | $(col 1 | range) ms | 1 |"
sm=$(col 5 | median)
sratio=$(awk '{ print $5 / $1 }' "$TMP/pairs" | median)
echo "| create → ready | from a template | $wm ms | $(col 3 | range) ms | $(printf '%.3f' "$ratio") |"
echo "| create → ready | from a template, a spare waiting (\`--spares 1\`) | $sm ms | $(col 5 | range) ms | $(printf '%.3f' "$sratio") |"
echo "| QEMU RSS when ready | cold boot | $(col 2 | mib | median) MiB | $(col 2 | mib | range) MiB | 1 |"
echo "| QEMU RSS when ready | from a template | $(col 4 | mib | median) MiB | $(col 4 | mib | range) MiB |" \
	"$(awk '{ print $4 / $2 }' "$TMP/pairs" | median | xargs printf '%.2f') |"
if [ -n "$TMPL_BASE" ]; then
	bcol() { awk -v c="$1" '{ print $c }' "$TMP/base-pairs"; }
	echo "| create → ready, base ($TMPL_BASE) | cold boot | $(bcol 1 | median) ms |" \
		"$(bcol 1 | range) ms | 1 |"
	echo "| create → ready, base | from a template | $(bcol 3 | median) ms | $(bcol 3 | range) ms |" \
		"$(awk '{ print $3 / $1 }' "$TMP/base-pairs" | median | xargs printf '%.3f') |"
	echo
	echo "Ratios to cold, pair by pair (median, range): this build" \
		"$(awk '{ print $3 / $1 }' "$TMP/pairs" | median | xargs printf '%.3f')" \
		"($(awk '{ printf "%.3f\n", $3 / $1 }' "$TMP/pairs" | range)), the base" \
		"$(awk '{ print $3 / $1 }' "$TMP/base-pairs" | median | xargs printf '%.3f')" \
		"($(awk '{ printf "%.3f\n", $3 / $1 }' "$TMP/base-pairs" | range)). The base's template:" \
		"$base_make_ms ms to make, memory.ram $(awk -v b="$base_ram" 'BEGIN { printf "%.0f MB", b / 1e6 }')."
fi
echo
echo "Making the template (\`sbx template create\`: boot, settling until free page reporting" \
	"gave back what boot freed, save):" \
	"$make_ms ms; its stream (memory.state, the devices' state)" \
	"$(awk -v b="$size" 'BEGIN { printf "%.2f MB", b / 1e6 }'), its RAM's data (memory.ram)" \
	"$(awk -v b="$ram" 'BEGIN { printf "%.0f MB", b / 1e6 }')."
echo
echo "A spare is a QEMU started ahead for the template's next clone, its memory filled in" \
	"(launcher/spare.h); each clone that takes one is measured from \`sbx create\` to ready," \
	"and the next spare is made before anything else is measured. Idle, a spare holds" \
	"its QEMU and the clone's memory (QEMU RSS $(col 6 | mib | median) MiB once the clone is ready)."
echo "tmpl.create $TMPL_N $cm $wm $ratio $make_ms $size $ram $sm $sratio" >>"$KV"
