#!/bin/bash
# File transfer benchmarks: markdown rows for bench/results.md.
#   bench/fs.sh ADDR
# Uploads and downloads of FS_BYTES (default 1G) to and from tmpfs through
# the agent at ADDR, in-process through libsbx (bench/fs.c), against the
# same bytes copied file -> plain Unix socket -> new file, alternated, with
# ratios taken pair by pair (FS_RUNS pairs, default 3); for an agent on a
# Unix socket, each end alone against a stand-in peer that neither hashes
# nor writes, verified against unverified (bench/fs_ends.c); then the
# verified / unverified ratio pair by pair, each digest alone on one core
# (XXH3-128, BLAKE2b-256); then scp over loopback
# against the same baseline, if OpenSSH is installed. Every side
# writes a new file (sbx's writes are atomic, so they always do): the
# comparison is like with like, fresh tmpfs pages on both sides.
set -eu
cd "$(dirname "$0")/.."
ADDR=${1:?usage: bench/fs.sh ADDR}
B=${SBX_BUILD:-build}
BYTES=${FS_BYTES:-1G}
RUNS=${FS_RUNS:-3}
DIR=$(mktemp -d /dev/shm/sbx-bench-fs.XXXXXX)
SSHD_PID=
MADE_RUN_SSHD=
cleanup() {
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	[ -n "$MADE_RUN_SSHD" ] && rmdir /run/sshd 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT

# The driver: sbx-bench once its main calls bench_fs, else built here.
DRIVER=("$B/sbx-bench")
if ! "$B/sbx-bench" fs --probe >/dev/null 2>&1; then
	cc -std=c11 -D_GNU_SOURCE -O2 -I. -DBENCH_FS_MAIN -o "$DIR/sbx-bench-fs" bench/fs.c \
		bench/fs_ends.c bench/stats.c "$B/host/libsbx.a" -lsodium
	DRIVER=("$DIR/sbx-bench-fs")
fi

head -c "$BYTES" /dev/urandom >"$DIR/src"
"${DRIVER[@]}" fs "$ADDR" "$DIR/src" "$DIR" "$RUNS"
case $ADDR in unix:*) "${DRIVER[@]}" fs-ends "$ADDR" "$DIR/src" "$DIR" "$RUNS" ;; esac

# ---- scp over loopback, for comparison ----
command -v /usr/sbin/sshd >/dev/null && command -v scp >/dev/null || exit 0
S=$DIR/ssh
mkdir -p "$S/home"
ssh-keygen -q -t ed25519 -N '' -f "$S/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$S/user_key"
cp "$S/user_key.pub" "$S/authorized_keys"
PORT=$((20000 + RANDOM % 20000))
# internal-sftp: no login shell runs on the server side, so root's
# ~/.bashrc (pyenv) is not measured; the client gets a clean HOME.
cat >"$S/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
KexAlgorithms curve25519-sha256
Ciphers aes128-gcm@openssh.com
EOF
if [ ! -d /run/sshd ]; then
	mkdir -p /run/sshd
	MADE_RUN_SSHD=1
fi
/usr/sbin/sshd -D -e -f "$S/sshd_config" 2>"$S/sshd.log" &
SSHD_PID=$!
SCP=(env HOME="$S/home" scp -q -F /dev/null -i "$S/user_key" -P "$PORT"
	-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o BatchMode=yes
	-o KexAlgorithms=curve25519-sha256 -c aes128-gcm@openssh.com)
for _ in $(seq 50); do
	"${SCP[@]}" "$S/user_key.pub" "root@127.0.0.1:$DIR/probe" 2>/dev/null && break
	sleep 0.1
done
[ -e "$DIR/probe" ] || { echo "bench/fs.sh: sshd did not come up: $(cat "$S/sshd.log")" >&2; exit 0; }

size=$(stat -c %s "$DIR/src")
mbps() { awk -v b="$size" -v ns="$1" 'BEGIN { printf "%.1f", b / (ns / 1e9) / 1e6 }'; }
timed() { # command... -> MB/s
	local t0 t1
	t0=$(date +%s%N)
	"$@"
	t1=$(date +%s%N)
	mbps $((t1 - t0))
}
up=() down=() base=() rup=() rdown=()
for _ in $(seq "$RUNS"); do
	b=$("${DRIVER[@]}" fs-plain "$DIR/src" "$DIR/plain.out")
	rm -f "$DIR/scp.out"
	u=$(timed "${SCP[@]}" "$DIR/src" "root@127.0.0.1:$DIR/scp.out")
	base+=("$b") up+=("$u") rup+=("$(awk -v a="$u" -v b="$b" 'BEGIN { print a / b }')")
	b=$("${DRIVER[@]}" fs-plain "$DIR/src" "$DIR/plain.out")
	rm -f "$DIR/scp.back"
	d=$(timed "${SCP[@]}" "root@127.0.0.1:$DIR/scp.out" "$DIR/scp.back")
	base+=("$b") down+=("$d") rdown+=("$(awk -v a="$d" -v b="$b" 'BEGIN { print a / b }')")
	rm -f "$DIR/plain.out" "$DIR/scp.back"
done
cmp -s "$DIR/src" "$DIR/scp.out" || { echo "bench/fs.sh: scp copy differs" >&2; exit 1; }
# median / min / max of a list
stats() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
	m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	printf "%s %s %s", m, v[1], v[NR] }'; }
row() { # what side n values... / ratios...
	local what=$1 side=$2 n=$3 s r
	s=($(stats "${@:4:n}"))
	r=($(stats "${@:4+n}"))
	printf '| %s | %s | %s | %.0f MB/s | min %.0f, max %.0f | %.2f (min %.2f, max %.2f) |\n' \
		"$what" "$side" "$n" "${s[0]}" "${s[1]}" "${s[2]}" "${r[0]}" "${r[1]}" "${r[2]}"
}
MIB=$((size >> 20))
SIDE="scp over loopback ($(ssh -V 2>&1 | cut -d, -f1), curve25519-sha256, aes128-gcm, SFTP)"
row "upload $MIB MiB to tmpfs" "$SIDE" "$RUNS" "${up[@]}" "${rup[@]}"
row "download $MIB MiB from tmpfs" "$SIDE" "$RUNS" "${down[@]}" "${rdown[@]}"
