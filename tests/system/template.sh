#!/bin/bash
# System tests for templates (sbx template, sbx create --from), with real
# sandboxes under QEMU: a template is saved to the data directory; clones
# restored from it answer, and each is a sandbox of its own: its host name,
# environment, labels and token, a lifetime counted from its start, and a
# kernel RNG reseeded apart from its template's and its siblings'; --cold
# boots; a clone of an image with disks writes into a disk of its own;
# the saved stream holds no RAM (that is memory.ram, sparse); a clone can
# be paused and resumed; a template of an older sbx and a failed restore
# are refused cleanly; removing a template leaves its clones running. The suite has a data directory of its own, so
# no other suite's create picks its template up.
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state SBX_DATA_DIR=$T_TMP/data
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done
	"$SBX" template rm ts 2>/dev/null # its spares, which kill does not reach'

meta() { sed -n "s/^$2 = //p" "$SBX_STATE_DIR/$1/meta"; }
left_s() { "$SBX" info --json "$1" | sed 's/.*"lifetime_left_ns":\([0-9]*\).*/\1/' | awk '{ print int($1 / 1e9) }'; }
listed() { "$SBX" ls | grep -q "^$1 "; }
# What a command prints in each clone, one line per clone.
both() { "$SBX" exec ca -- sh -c "$1" && "$SBX" exec cb -- sh -c "$1"; }
differ() {
	local a b
	a=$("$SBX" exec ca -- sh -c "$2") && b=$("$SBX" exec cb -- sh -c "$2") || return 1
	[ -n "$a" ] || fail "$1: nothing" || return 1
	[ "$a" != "$b" ] || fail "$1: both clones have $a"
}

test_create() {
	local dir=$SBX_DATA_DIR/templates/t1 state ram
	"$SBX" template create t1 --memory 768 >/dev/null || return 1
	"$SBX" template ls | grep -q "^t1 *minimal *768 *1 " || fail "ls: $("$SBX" template ls)" ||
		return 1
	[ -s "$dir/memory.state" ] || fail "no saved state in $dir" || return 1
	expect_eq "the state's mode" "$(stat -c %a "$dir/memory.state")" 600 || return 1
	expect_eq "the RAM's mode" "$(stat -c %a "$dir/memory.ram")" 600 || return 1
	expect_eq "the RAM's size" "$(stat -c %s "$dir/memory.ram")" $((768 << 20)) || return 1
	# the stream holds the devices' state only (x-ignore-shared), and
	# memory.ram only the pages of data: neither is the whole RAM
	state=$(stat -c %s "$dir/memory.state") ram=$(($(stat -c %b "$dir/memory.ram") / 2048))
	echo "#   memory.state: $state bytes; memory.ram: $ram MiB on disk" >&2
	[ "$state" -lt $((8 << 20)) ] || fail "memory.state is $state bytes: the RAM is in it" ||
		return 1
	[ "$ram" -gt 16 ] && [ "$ram" -lt 400 ] || fail "memory.ram holds $ram MiB" || return 1
	expect_eq "meta's mode (it holds a token)" "$(stat -c %a "$dir/meta")" 600 || return 1
	# the sandbox it was made from is gone
	[ -z "$(ls "$SBX_STATE_DIR")" ] || fail "left in the state dir: $(ls "$SBX_STATE_DIR")"
}

test_clones() {
	local rss
	"$SBX" create --from t1 --name ca --lifetime 5m -e FOO=a -L who=a >/dev/null || return 1
	# a plain create of the same image, memory and CPUs picks the template
	"$SBX" create --name cb --memory 768 --lifetime 5m -e FOO=b -L who=b >/dev/null || return 1
	expect_eq "ca's template" "$(meta ca template)" t1 || return 1
	expect_eq "cb's template" "$(meta cb template)" t1 || return 1
	# the first command already sees the clone's files (the agent writes
	# them once IDENTITY's answer is sent, before it serves anything else)
	expect_eq "the clones' /run/sbx/labels and env, first thing" \
		"$(both 'cat /run/sbx/labels; sed -n "s/^env.FOO = //p" /run/sbx/env' | tr '\n' ' ')" \
		"who=a a who=b b " || return 1
	expect_eq "exec in the clones" "$(both 'echo hi' | tr '\n' ' ')" "hi hi " || return 1
	# memory.ram's pages of data: not all of its 768 MiB
	rss=$(awk '$1 == "VmRSS:" { print int($2 / 1024) }' "/proc/$(meta ca qemu_pid)/status")
	[ "$rss" -lt 450 ] || fail "a clone's QEMU holds $rss MiB"
}

# A clone's QEMU gets a stub kernel (the boot header alone) and an initrd
# of its config alone: it loads both whole into fw_cfg for a boot that
# never comes (the real bzImage was 13.5 MiB of each clone's RSS).
test_clone_files() {
	local q k i
	q=$(meta ca qemu_pid)
	k=$(tr '\0' '\n' <"/proc/$q/cmdline" | sed -n '/^-kernel$/{n;p}')
	i=$(tr '\0' '\n' <"/proc/$q/cmdline" | sed -n '/^-initrd$/{n;p}')
	expect_eq "the clone's -kernel" "$k" "$SBX_STATE_DIR/ca/kernel.stub" || return 1
	[ "$(stat -c %s "$k")" -lt $((256 << 10)) ] || fail "$k is $(stat -c %s "$k") bytes" ||
		return 1
	expect_eq "the clone's -initrd" "$i" "$SBX_STATE_DIR/ca/initrd.img" || return 1
	[ "$(stat -c %s "$i")" -lt $((64 << 10)) ] || fail "$i is $(stat -c %s "$i") bytes" ||
		return 1
	# the boot header QEMU parsed is the real kernel's
	cmp -s -n 4096 "$k" "$BUILD/vmlinuz" || fail "$k does not start as $BUILD/vmlinuz"
}

# Not proof of IDENTITY's reseed by itself: with an agent that skips it,
# these clones still differed (2026-12-06), most likely because this
# template's guest is seconds old and its kernel reseeds on its own after
# as much (with RDSEED under TCG's -cpu max); the reseed is for clones of a
# template whose CRNG was seeded less than its interval (up to 60 s)
# before the save.
test_rng() {
	differ "/proc/sys/kernel/random/uuid" 'cat /proc/sys/kernel/random/uuid' || return 1
	differ "/dev/urandom" 'head -c32 /dev/urandom | od -An -tx1 | tr -d " \n"'
}

test_ssh_keys() {
	"$SBX" ssh ca -- true >/dev/null 2>&1 || fail "sbx ssh ca failed" || return 1
	"$SBX" ssh cb -- true >/dev/null 2>&1 || fail "sbx ssh cb failed" || return 1
	differ "the SSH host key" 'od -An -tx1 /run/sbx-ssh/ssh_host_ed25519_key | tr -d " \n"'
}

test_identity() {
	expect_eq "host names" "$(both hostname | tr '\n' ' ')" "ca cb " || return 1
	expect_eq "environment" "$(both 'echo $FOO' | tr '\n' ' ')" "a b " || return 1
	expect_eq "labels in the guest" "$(both 'cat /run/sbx/labels' | tr '\n' ' ')" "who=a who=b " ||
		return 1
	"$SBX" ls | grep -q "^ca .*who=a" || fail "ls: $("$SBX" ls)"
}

test_token() {
	local tok
	tok=$(sed -n 's/^token = //p' "$SBX_DATA_DIR/templates/t1/meta")
	[ -n "$tok" ] || fail "no token in the template's meta" || return 1
	SBX_TOKEN=$tok "$SBX" --connect "$(meta ca addr)" exec -- true 2>"$T_TMP/err" &&
		{ fail "the template's token opened a clone"; return 1; }
	"$SBX" exec ca -- true || fail "the clone's own token does not open it"
}

# IDENTITY sets the guest's clock, and sbx asks nothing after it: a
# clone's wall clock is the host's, though its template's stood still
# from the save (5 s before at least, here).
test_clock() {
	local made guest host
	made=$(sed -n 's/^created = //p' "$SBX_DATA_DIR/templates/t1/meta")
	[ -n "$made" ] || fail "no creation time in the template's meta" || return 1
	while [ $(($(date +%s) - made)) -lt 5 ]; do sleep 1; done
	"$SBX" create --from t1 --name ct --lifetime 5m >/dev/null || return 1
	guest=$("$SBX" exec ct -- date +%s) && host=$(date +%s) || return 1
	[ $((host - guest)) -le 2 ] && [ $((guest - host)) -le 2 ] ||
		fail "the clone's clock is $((guest - host)) s off the host's" || return 1
	"$SBX" kill ct >/dev/null
}

# The template was saved long before; the clone's 8 s start at its create.
test_lifetime() {
	local left
	"$SBX" create --from t1 --name cl --lifetime 8s >/dev/null || return 1
	left=$(left_s cl)
	[ "$left" -ge 4 ] && [ "$left" -le 8 ] || fail "left after create: $left s" || return 1
	wait_for 30 eval '! listed cl' || fail "still running 30 s after its 8 s lifetime"
}

# The default lifetime, a session: held in the background; once closed,
# the clone's own grace period (2 s, not the template's) ends it.
test_session() {
	"$SBX" create --from t1 --name cs --session-grace 2s >/dev/null || return 1
	"$SBX" info --json cs | grep -q '"lifetime":"session","lifetime_left_ns":[0-9]*,"sessions":1,' ||
		fail "info: $("$SBX" info --json cs)" || return 1
	"$SBX" exec cs -- true || return 1
	"$SBX" close cs >/dev/null || return 1
	wait_for 30 eval '! listed cs' || fail "still running 30 s after its session closed"
}

test_cold() {
	"$SBX" create --cold --name cc --memory 768 --lifetime 5m >/dev/null || return 1
	expect_eq "a cold sandbox's template" "$(meta cc template)" "" || return 1
	"$SBX" exec cc -- true
}

# An image with disks: each clone writes into an overlay of its own over
# the template's disk; the template cannot be removed under it.
test_disks() {
	"$SBX" template create deb --image debian --memory 1024 >/dev/null || return 1
	"$SBX" create --from deb --name da --lifetime 5m >/dev/null || return 1
	"$SBX" create --from deb --name db --lifetime 5m >/dev/null || return 1
	expect_eq "da's disk" "$(meta da disk)" "$SBX_DATA_DIR/disks/da.qcow2" || return 1
	"$SBX" exec da -- sh -c 'echo only-a > /home/app/f && sync' || return 1
	expect_eq "db's view" "$("$SBX" exec db -- sh -c 'cat /home/app/f 2>/dev/null || echo none')" \
		none || return 1
	expect_eq "da's file" "$("$SBX" exec da -- cat /home/app/f)" only-a || return 1
	"$SBX" template rm deb 2>"$T_TMP/err" && { fail "removed under its clones"; return 1; }
	grep -q "is in use" "$T_TMP/err" || fail "rm said: $(cat "$T_TMP/err")" || return 1
	"$SBX" kill da >/dev/null && "$SBX" kill db >/dev/null || return 1
	[ ! -e "$SBX_DATA_DIR/disks/da.qcow2" ] || fail "da's disk is left" || return 1
	"$SBX" template rm deb
}

# A clone's RAM is a memfd of its own, loaded with x-ignore-shared on:
# its pause must put its RAM in the stream again, or the resume has none.
test_clone_pause() {
	local size
	"$SBX" create --from t1 --name cp --lifetime 5m >/dev/null || return 1
	"$SBX" exec cp -- sh -c 'echo kept > /tmp/file' || return 1
	"$SBX" pause cp >/dev/null || return 1
	size=$(stat -c %s "$SBX_DATA_DIR/paused/cp.state")
	[ "$size" -gt $((32 << 20)) ] || fail "the paused state is $size bytes: no RAM" || return 1
	"$SBX" resume cp >/dev/null || return 1
	expect_eq "the file after resume" "$("$SBX" exec cp -- cat /tmp/file)" kept || return 1
	"$SBX" kill cp >/dev/null
}

# A template an older sbx made (its RAM in memory.state, a zero.map): not
# picked by a plain create, refused by --from with how to make it again,
# listed as such, removable.
test_old() {
	local old=$SBX_DATA_DIR/templates/old
	cp -a "$SBX_DATA_DIR/templates/t1" "$old" && rm "$old/memory.ram" && : >"$old/zero.map" ||
		return 1
	"$SBX" template ls | grep -q "^old .*older sbx" || fail "ls: $("$SBX" template ls)" || return 1
	"$SBX" create --from old --lifetime 5m 2>"$T_TMP/err" && { fail "cloned an old template"; return 1; }
	grep -q "made by an older sbx.*sbx template create old --image minimal --memory 768" \
		"$T_TMP/err" || fail "said: $(cat "$T_TMP/err")" || return 1
	"$SBX" template rm old || return 1
	[ ! -e "$old" ] || fail "old is still on disk"
}

# A restore that fails (a damaged stream) leaves no QEMU, no state
# directory, and the clone's RAM goes with its QEMU.
test_failed_restore() {
	local bad=$SBX_DATA_DIR/templates/bad
	cp -a "$SBX_DATA_DIR/templates/t1" "$bad" && truncate -s 4096 "$bad/memory.state" || return 1
	"$SBX" create --from bad --name cbad --lifetime 5m 2>"$T_TMP/err" &&
		{ fail "restored a damaged stream"; return 1; }
	[ ! -e "$SBX_STATE_DIR/cbad" ] ||
		fail "its state directory is left: $(ls -A "$SBX_STATE_DIR/cbad"); $(cat "$T_TMP/err")" ||
		return 1
	! pgrep -f "qemu-system.*$SBX_STATE_DIR/cbad/" >/dev/null || fail "its QEMU runs on" || return 1
	"$SBX" template rm bad
}

test_rm() {
	"$SBX" template rm t1 || return 1
	[ -e "$SBX_DATA_DIR/templates/t1" ] && { fail "still on disk"; return 1; }
	"$SBX" exec ca -- true || fail "a clone stopped with its template" || return 1
	"$SBX" create --from t1 --lifetime 5m 2>"$T_TMP/err" && { fail "cloned a removed template"; return 1; }
	grep -q "no template t1" "$T_TMP/err" || fail "said: $(cat "$T_TMP/err")"
}

# A template's spares: QEMUs started ahead for its next clones
# (launcher/spare.h). The id of template $1's spare waiting, if any.
spare_of() {
	local m
	for m in "$SBX_STATE_DIR"/*/meta; do
		[ -e "$m" ] && grep -qx "spare = $1" "$m" && [ -e "$(dirname "$m")/spare.ready" ] &&
			basename "$(dirname "$m")"
	done
}
spare_ready() { [ -n "$(spare_of "$1")" ]; }

test_spares() {
	local s s2 id
	"$SBX" template create ts --memory 768 --spares 1 >/dev/null || return 1
	wait_for 30 spare_ready ts || fail "no spare made" || return 1
	s=$(spare_of ts)
	pgrep -f "qemu-system.*$SBX_STATE_DIR/$s/" >/dev/null || fail "the spare has no QEMU" ||
		return 1
	! listed "$s" || fail "ls lists the spare" || return 1
	"$SBX" exec "$s" -- true 2>"$T_TMP/err" && { fail "exec ran in a spare"; return 1; }
	grep -q "no such sandbox" "$T_TMP/err" || fail "exec said: $(cat "$T_TMP/err")" || return 1
	id=$("$SBX" create --from ts --lifetime 5m --label team=s -e SPARE_ENV=yes) || return 1
	expect_eq "the clone is the spare" "$id" "$s" || return 1
	expect_eq "its meta" "$(meta "$id" from_spare)/$(meta "$id" spare)" "yes/" || return 1
	expect_eq "its identity" "$("$SBX" exec "$id" -- sh -c 'echo $SPARE_ENV $(hostname)')" \
		"yes $id" || return 1
	listed "$id" && "$SBX" ls | grep -q "^$id .*team=s" || fail "ls: $("$SBX" ls)" || return 1
	"$SBX" info "$id" | grep -q "from taking a spare" || fail "info: $("$SBX" info "$id")" ||
		return 1
	# the next one is made in the background
	wait_for 30 spare_ready ts || fail "no spare made again" || return 1
	s2=$(spare_of ts)
	[ "$s2" != "$s" ] || fail "the same spare again" || return 1
	# a clone named by its caller cannot have a spare's id: it restores alone
	"$SBX" create --from ts --name cnamed --lifetime 5m >/dev/null || return 1
	expect_eq "the spare after a named clone" "$(spare_of ts)" "$s2" || return 1
	"$SBX" kill cnamed >/dev/null
}

# A spare whose QEMU died is cleaned away; a clone then restores alone.
test_spare_dead() {
	local s id
	s=$(spare_of ts)
	[ -n "$s" ] || fail "no spare" || return 1
	pkill -KILL -f "qemu-system.*$SBX_STATE_DIR/$s/" || fail "no QEMU to kill" || return 1
	wait_for 10 eval '! pgrep -f "qemu-system.*$SBX_STATE_DIR/$s/" >/dev/null' || return 1
	"$SBX" ls >/dev/null
	wait_for 10 test ! -e "$SBX_STATE_DIR/$s" || fail "its directory is left" || return 1
	id=$("$SBX" create --from ts --lifetime 5m) || return 1
	expect_eq "the clone took a spare" "$(meta "$id" from_spare)" "" || return 1
	"$SBX" exec "$id" -- true || fail "the clone $id" || return 1
	"$SBX" kill "$id" >/dev/null
}

# Two clones at once, one spare: one takes it, the other restores alone.
test_spare_race() {
	local a b
	wait_for 30 spare_ready ts || fail "no spare" || return 1
	"$SBX" create --from ts --lifetime 5m >"$T_TMP/ra" 2>"$T_TMP/ra.err" &
	a=$!
	"$SBX" create --from ts --lifetime 5m >"$T_TMP/rb" 2>"$T_TMP/rb.err" &
	b=$!
	wait $a && wait $b || fail "a create failed: $(cat "$T_TMP/ra.err" "$T_TMP/rb.err")" ||
		return 1
	expect_eq "spares taken" "$(meta "$(cat "$T_TMP/ra")" from_spare)$(meta "$(cat "$T_TMP/rb")" from_spare)" \
		yes || return 1
	"$SBX" exec "$(cat "$T_TMP/ra")" -- true && "$SBX" exec "$(cat "$T_TMP/rb")" -- true || return 1
	"$SBX" kill "$(cat "$T_TMP/ra")" >/dev/null
	"$SBX" kill "$(cat "$T_TMP/rb")" >/dev/null
}

# template rm stops its spares: no QEMU, no directory.
test_spares_rm() {
	local s id
	id=$("$SBX" create --from ts --lifetime 5m) || return 1
	wait_for 30 spare_ready ts || fail "no spare" || return 1
	s=$(spare_of ts)
	[ "$s" != "$id" ] || fail "the spare is the clone" || return 1
	"$SBX" template rm ts || return 1
	! pgrep -f "qemu-system.*$SBX_STATE_DIR/$s/" >/dev/null || fail "a spare's QEMU runs" ||
		return 1
	wait_for 10 eval '[ -z "$(grep -lx "spare = ts" "$SBX_STATE_DIR"/*/meta 2>/dev/null)" ]' ||
		fail "spares left: $(grep -lx "spare = ts" "$SBX_STATE_DIR"/*/meta)" || return 1
	"$SBX" exec "$id" -- true || fail "a clone stopped with its template" || return 1
	"$SBX" kill "$id" >/dev/null
}

t "template create: saved to the data directory (0600), listed, nothing left running" test_create || exit 1
t "two clones, --from and a plain create, answer exec, holding their RAM's data only" test_clones || exit 1
t "a clone's QEMU loads a stub kernel and its config alone, not the bzImage and initramfs" test_clone_files
t "the clones' kernel RNG differs: random/uuid and /dev/urandom" test_rng
t "the clones make different SSH host keys" test_ssh_keys
t "each clone has its own host name, environment and labels" test_identity
t "the template's token does not open a clone" test_token
t "a clone's wall clock is the host's, however old its template" test_clock
t "a clone's lifetime counts from its start, and ends it" test_lifetime
t "a clone with a session lifetime lives while held, then its own grace" test_session
t "--cold boots even when a template fits" test_cold
if [ -e "$BUILD/images/debian/base.erofs" ]; then
	t "debian: each clone has its own disk over the template's, rm refused while in use" test_disks
else
	skip "debian: each clone has its own disk over the template's, rm refused while in use" \
		"no debian image (make image)"
fi
t "a clone pauses (its RAM in the paused state) and resumes with its files" test_clone_pause
t "a template of an older sbx: listed as such, refused with how to remake it, removable" test_old
t "a failed restore leaves no QEMU and no state directory" test_failed_restore
t "template rm: its clones keep running, a new --from is refused" test_rm
t "--spares 1: a spare waits unlisted, the next clone takes it with its identity, another is made" test_spares
t "a spare whose QEMU died is cleaned away, a clone restores alone" test_spare_dead
t "two clones at once and one spare: one takes it, the other restores alone" test_spare_race
t "template rm stops its spares, its clones keep running" test_spares_rm
