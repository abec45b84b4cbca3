#!/bin/bash
# System tests for images (docs/IMAGES.md): the Debian image built by
# `make image` booted under QEMU with sbx-init still PID 1, its tools, its
# copy-on-write disk (writes stay in the sandbox, the base never changes,
# a full disk gives ENOSPC and the agent keeps serving), volumes,
# snapshots, and images imported from root file systems, hostile ones
# refused without writing outside the data directory.
. "$(dirname "$0")/../lib.sh"

SUITE=images
export SBX_STATE_DIR=$T_TMP/state SBX_DATA_DIR=$T_TMP/data
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
BASE=$BUILD/images/debian/base.erofs

# create NAME [OPTIONS...]: a sandbox with a 10 min lifetime; its id is NAME.
create() {
	local name=$1
	shift
	"$SBX" create --name "$name" --lifetime 10m "$@" >"$T_TMP/id" 2>"$T_TMP/create.err" ||
		fail "create $name: $(cat "$T_TMP/create.err")" || return 1
	expect_eq "create printed the id" "$(cat "$T_TMP/id")" "$name"
}

# sh_in ID CMD...: runs CMD with bash in the sandbox, as its default user.
sh_in() {
	local id=$1
	shift
	"$SBX" exec "$id" -- bash -c "$*"
}

test_boot() {
	[ -r "$BASE" ] || fail "$BASE is missing (make image)" || return 1
	sha256sum <"$BASE" >"$T_TMP/base.sha" || return 1
	create deb --image debian --disk 256M || return 1
	expect_eq "os-release" "$(sh_in deb '. /etc/os-release; echo $ID $VERSION_ID')" "debian 12" ||
		return 1
	# PID 1 is sbx-init from the initramfs, not a second init. A command's
	# /proc does not show PID 1: the agent's file operations see its own.
	expect_eq "PID 1" "$("$SBX" fs cat deb /proc/1/cmdline | tr "\0" " ")" "/init " || return 1
	expect_eq "/ is the overlay" "$(sh_in deb 'findmnt -no FSTYPE /')" overlay
}

test_tools() {
	expect_eq "python3" "$(sh_in deb "python3 -c 'print(6 * 7)'")" 42 || return 1
	expect_eq "node" "$(sh_in deb "node -e 'console.log(6 * 7)'")" 42 || return 1
	expect_eq "deno" "$(sh_in deb "deno eval 'console.log(6 * 7)'" 2>&1)" 42 || return 1
	expect_eq "bash" "$(sh_in deb 'echo ${BASH_VERSION%%.*}')" 5
}

test_user_app() {
	expect_eq "default user" "$(sh_in deb 'id -un; echo $HOME; pwd')" "app
/home/app
/home/app" || return 1
	expect_eq "sudo as app" "$(sh_in deb 'sudo -n true && echo yes')" yes || return 1
	expect_eq "root with -u root" "$("$SBX" exec -u root deb -- id -u)" 0
}

# sudo makes root, and root stays in its cgroup: the escape and the
# writes at the agent fail (issue 18 item 8; docs/PROTOCOL.md).
test_sudo_stays_in_cgroup() {
	local out what
	out=$(sh_in deb 'sudo -n sh -c "echo \$\$ >/sys/fs/cgroup/cgroup.procs; echo escape \$?
		echo 1000 >/proc/1/oom_score_adj; echo oom \$?
		echo max >/sys/fs/cgroup/pids.max; echo pids.max \$?
		cat /proc/self/cgroup" 2>&1')
	for what in escape oom pids.max; do
		echo "$out" | grep -q "^$what [1-9]" || fail "as root through sudo ($what): $out" ||
			return 1
	done
	[ "$(echo "$out" | tail -1)" = "0::/" ] || fail "left its cgroup: $out"
}

test_git() {
	local out
	out=$(sh_in deb 'set -e; cd $(mktemp -d); git init -q; git config user.email a@b; git config user.name a
		echo hi >f; git add f; git commit -qm first; git log --format=%s')
	expect_eq "git log" "$out" first
}

test_pip_local() {
	local out
	out=$(sh_in deb 'set -e; d=$(mktemp -d); mkdir -p $d/pkg/sbxdemo
		printf "def answer():\n    return 42\n" >$d/pkg/sbxdemo/__init__.py
		printf "[project]\nname = \"sbxdemo\"\nversion = \"1.0\"\n[build-system]\nrequires = [\"setuptools\"]\nbuild-backend = \"setuptools.build_meta\"\n" >$d/pkg/pyproject.toml
		python3 -m venv --system-site-packages $d/venv
		$d/venv/bin/pip install -q --no-index --no-build-isolation $d/pkg
		$d/venv/bin/python -c "import sbxdemo; print(sbxdemo.answer())"' 2>&1)
	expect_eq "pip install of a local package" "${out##*$'\n'}" 42 || fail "said: $out"
}

test_writes_stay() {
	sh_in deb 'sudo sh -c "echo kept >/etc/sbx-test; echo kept >/usr/bin/sbx-test"' || return 1
	expect_eq "after another exec" "$(sh_in deb 'cat /etc/sbx-test')" kept || return 1
	"$SBX" kill deb || return 1
	create deb2 --image debian || return 1
	expect_eq "a new sandbox" "$(sh_in deb2 'cat /etc/sbx-test 2>&1 || echo gone')" \
		"cat: /etc/sbx-test: No such file or directory
gone" || return 1
	"$SBX" kill deb2
}

test_base_unchanged() {
	expect_eq "the base's digest" "$(sha256sum <"$BASE")" "$(cat "$T_TMP/base.sha")"
}

test_disk_full() {
	local out
	create full --image debian --disk 128M || return 1
	out=$(sh_in full 'dd if=/dev/zero of=$HOME/fill bs=1M 2>&1; echo status=$?')
	[[ $out == *"No space left on device"*"status=1" ]] || fail "dd said: $out" || return 1
	expect_eq "the agent still answers" "$("$SBX" exec full -- echo alive)" alive || return 1
	# ext4 may give back a few blocks it had reserved: full is >= 99%.
	out=$(sh_in full 'df --output=pcent / | tail -1 | tr -dc 0-9')
	[ "${out:-0}" -ge 99 ] || fail "the disk is $out% full" || return 1
	"$SBX" kill full
}

test_volume() {
	# Another sandbox runs meanwhile: finding who has a volume reads its
	# metadata too (once the cause of "wrong token" for the next create).
	create bystander || return 1
	"$SBX" volume create v1 --size 256M >/dev/null || return 1
	create vol1 --image debian --volume v1:/data || return 1
	sh_in vol1 'sudo sh -c "echo outlives >/data/f"' || return 1
	# One running sandbox at a time.
	"$SBX" create --name vol2 --volume v1:/data >/dev/null 2>"$T_TMP/vol2.err" &&
		{ fail "a second sandbox got the volume"; return 1; }
	grep -q "volume v1 is in use by sandbox vol1" "$T_TMP/vol2.err" ||
		fail "said: $(cat "$T_TMP/vol2.err")" || return 1
	"$SBX" volume rm v1 2>/dev/null && { fail "rm of a volume in use"; return 1; }
	"$SBX" kill vol1 || return 1
	# The next sandbox sees it (the minimal image mounts volumes too).
	expect_eq "the next sandbox" "$("$SBX" run --volume v1:/data -- cat /data/f)" outlives ||
		return 1
	"$SBX" volume rm v1 || return 1
	[ -z "$("$SBX" volume ls | sed 1d)" ] || fail "left: $("$SBX" volume ls)" || return 1
	"$SBX" kill bystander
}

test_snapshot() {
	local want
	create snapsrc --image debian || return 1
	sh_in snapsrc 'sudo sh -c "echo from-snapshot >/etc/marker; rm /usr/bin/less"' || return 1
	# Written just before the snapshot, with nothing in between: 8 MiB
	# still in the guest's page cache when the snapshot begins.
	want=$(sh_in snapsrc 'head -c 8388608 /dev/urandom | tee last | sha256sum') || return 1
	"$SBX" snapshot create snapsrc snap1 >/dev/null || return 1
	"$SBX" kill snapsrc || return 1
	expect_eq "a sandbox of the snapshot" \
		"$("$SBX" run --image snap1 -- sh -c 'cat /etc/marker; ls /usr/bin/less 2>/dev/null; id -un')" \
		"from-snapshot
app" || return 1
	expect_eq "the file written just before" \
		"$("$SBX" run --image snap1 -- sh -c 'sha256sum <last')" "$want" || return 1
	"$SBX" image rm debian 2>"$T_TMP/rm.err" && { fail "rm of a built image"; return 1; }
	"$SBX" image rm snap1 || return 1
	[ ! -e "$SBX_DATA_DIR/images/snap1" ] || fail "snap1 left behind"
}

test_import_debian_tarball() {
	# The image's own tree, as `podman export` would write it.
	fsck.erofs --extract="$T_TMP/debian-tree" --preserve "$BASE" >/dev/null || return 1
	tar -C "$T_TMP/debian-tree" --numeric-owner -czf "$T_TMP/debian.tar.gz" . || return 1
	rm -rf "$T_TMP/debian-tree"
	"$SBX" image import deb-tar "$T_TMP/debian.tar.gz" >/dev/null || return 1
	rm -f "$T_TMP/debian.tar.gz"
	expect_eq "booted from the import" \
		"$("$SBX" run --image deb-tar -- bash -c '. /etc/os-release; echo $ID; ls -l /sbin/sbx-init | cut -c1-10; id -un; pwd')" \
		"debian
-rwxr-xr-x
app
/home/app" || return 1
	expect_eq "root with -u root" "$("$SBX" run --image deb-tar -u root -- id -u)" 0 || return 1
	"$SBX" image rm deb-tar
}

# A second, unrelated root file system: busybox alone.
test_import_busybox_dir() {
	local r=$T_TMP/bb
	mkdir -p "$r/bin" "$r/etc" || return 1
	cp /bin/busybox "$r/bin/" && ln -s busybox "$r/bin/sh" || return 1
	echo 'root:x:0:0:root:/root:/bin/sh' >"$r/etc/passwd"
	echo 'NAME=tiny' >"$r/etc/os-release"
	"$SBX" image import tiny "$r" >/dev/null 2>"$T_TMP/tiny.err" || return 1
	expect_eq "import's note" "$(cat "$T_TMP/tiny.err")" \
		"sbx: image import tiny: note: no /usr/sbin/dropbear: sbx ssh will not work in this image" ||
		return 1
	# No user app: commands run as root.
	expect_eq "booted" "$("$SBX" run --image tiny -- /bin/busybox sh -c 'cat /etc/os-release; id -u')" \
		"NAME=tiny
0" || return 1
	[ ! -e "$r/sbin" ] || fail "the source directory was changed"
}

test_hostile_imports() {
	local h=$T_TMP/hostile out before
	mkdir -p "$h/nosh/etc" "$h/outside" "$h/escape"
	echo 'root:x:0:0::/:/bin/sh' >"$h/nosh/etc/passwd"
	cp -a "$T_TMP/bb" "$h/sbinlink" && ln -s "$h/outside" "$h/sbinlink/sbin" || return 1
	python3 -c 'import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w")
i = tarfile.TarInfo("../escape/evil"); i.size = 4; t.addfile(i, io.BytesIO(b"evil")); t.close()' \
		"$h/dotdot.tar" || return 1
	echo "not an archive" >"$h/junk.tar"
	# A tar archive, but of documents, not of a root file system.
	tar -C "$ROOT/docs" -cf "$h/docs.tar" . || return 1
	# A root file system whose /etc/passwd has no root.
	cp -a "$T_TMP/bb" "$h/noroot" && echo 'app:x:1000:1000::/:/bin/sh' >"$h/noroot/etc/passwd" ||
		return 1
	# A link to outside the tree, then a file through it.
	python3 -c 'import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w")
l = tarfile.TarInfo("out"); l.type = tarfile.SYMTYPE; l.linkname = sys.argv[2]; t.addfile(l)
i = tarfile.TarInfo("out/evil"); i.size = 4; t.addfile(i, io.BytesIO(b"evil")); t.close()' \
		"$h/linkout.tar" "$h/outside" || return 1
	before=$(find "$T_TMP" -path "$SBX_DATA_DIR" -prune -o -print | sort)
	out=$("$SBX" image import h1 "$h/nosh" 2>&1)
	[[ $out == *"not a root file system: no /bin/sh"* ]] || fail "no /bin/sh: $out" || return 1
	out=$("$SBX" image import h2 "$h/sbinlink" 2>&1)
	[[ $out == *"/sbin is a symbolic link that leads outside the tree"* ]] ||
		fail "symlinked /sbin: $out" || return 1
	out=$("$SBX" image import h3 "$h/dotdot.tar" 2>&1)
	[[ $out == *'leads outside the tree ("..")'* ]] || fail "../ entries: $out" || return 1
	out=$("$SBX" image import h4 "$h/junk.tar" 2>&1)
	[[ $out == *"is not a tar archive"* ]] || fail "junk: $out" || return 1
	out=$("$SBX" image import h5 "$h/docs.tar" 2>&1)
	[[ $out == *"docs.tar is not a root file system: no /bin/sh"* ]] ||
		fail "a tarball of documents: $out" || return 1
	out=$("$SBX" image import h6 "$h/noroot" 2>&1)
	[[ $out == *"its /etc/passwd has no user root with uid 0"* ]] || fail "no root: $out" ||
		return 1
	out=$("$SBX" image import h7 "$h/linkout.tar" 2>&1)
	[[ $out == *"cannot unpack"* ]] || fail "a file through a link to outside: $out" || return 1
	expect_eq "nothing written outside the data directory" \
		"$(find "$T_TMP" -path "$SBX_DATA_DIR" -prune -o -print | sort)" "$before" || return 1
	expect_eq "no image made" "$(ls "$SBX_DATA_DIR/images")" tiny || return 1
	expect_eq "no scratch left" "$(ls -A "$SBX_DATA_DIR/tmp")" ""
}

t "the Debian image boots: sbx-init PID 1, / an overlay" test_boot || exit 1
t "python3, node, deno and bash" test_tools
t "commands run as app (passwordless sudo); -u root" test_user_app
t "root through sudo: the cgroup escape and the writes at the agent fail" test_sudo_stays_in_cgroup
t "git init and commit" test_git
t "pip install of a local package into a venv" test_pip_local
t "writes survive execs, not kill + create" test_writes_stay
t "the base image's digest is unchanged" test_base_unchanged
t "a full --disk gives ENOSPC; the agent answers" test_disk_full
t "a volume outlives its sandbox, one sandbox at a time" test_volume
t "a snapshot boots with what the sandbox wrote" test_snapshot
t "import of a tarball of the Debian image" test_import_debian_tarball
t "import of a busybox-only directory" test_import_busybox_dir
t "hostile or foreign imports refused, nothing written outside" test_hostile_imports
