# bench/peers.sh: the peers sbx is compared with, for bench/run.sh and
# bench/footprint.sh (sourced, bash). Each listens on loopback or a socket
# in PEER_DIR only, with throwaway keys and state there, and is started and
# stopped by pid; nothing of the machine's own configuration is read or
# written (sshd gets its own sshd_config; /run/sshd, sshd's privilege
# separation directory, is created only if missing and then removed).
#
# Root's ~/.bashrc runs pyenv (../shared/BENCH.md), and sshd and dropbear
# run every command through the user's shell (bash -c, which reads
# ~/.bashrc when started by an SSH server). So each SSH server runs in a
# private mount namespace where /root is an empty directory of PEER_DIR:
# the shell starts clean, and the real /root is not touched. The same
# namespace gets its own /etc/shells naming bash (dropbear refuses users
# whose shell is not listed), whatever the machine's says.
#
#   peers_start DIR      starts qemu-ga, sshd, dropbear; sets QGA_SOCK,
#                        SSHD_PORT, DROPBEAR_PORT, SSH_CMD (an array: the
#                        ssh client up to the host, no port; SSH_BASE the
#                        same without `env HOME=$SSH_HOME`), QGA_PID,
#                        SSHD_PID, DROPBEAR_PID
#   peers_stop           stops them (and any ControlMaster), by pid
#   peers_versions       one line naming the versions

PEER_PIDS=()
PEER_MADE_RUN_SSHD=
PEER_KEX=curve25519-sha256

peer_say() { echo "bench: $*" >&2; }

# A free loopback TCP port.
peer_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

peer_wait_tcp() { # PORT WHAT
	for _ in $(seq 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	peer_say "$2 did not start listening on 127.0.0.1:$1"
	return 1
}

# Runs a command with /root replaced by $PEER_DIR/root and /etc/shells by
# $PEER_DIR/shells (see above). Call it in the background only: it execs,
# so that $! is the server's pid.
peer_clean_root() {
	exec unshare -m --propagation private sh -c \
		'mount --bind "$0/root" /root && mount --bind "$0/shells" /etc/shells && exec "$@"' \
		"$PEER_DIR" "$@"
}

peers_start() {
	PEER_DIR=$1
	local d=$PEER_DIR
	mkdir -p "$d/root/.ssh" "$d/client-home" "$d/qga-state"
	chmod 700 "$d/root" "$d/root/.ssh"
	printf '%s\n' /bin/sh /usr/bin/sh /bin/bash /usr/bin/bash /bin/dash /usr/bin/dash >"$d/shells"

	# ---- qemu-ga, on a Unix socket, its state in $d ----
	QGA_SOCK=$d/qga.sock
	qemu-ga -m unix-listen -p "$QGA_SOCK" -t "$d/qga-state" >"$d/qga.log" 2>&1 &
	QGA_PID=$!
	PEER_PIDS+=("$QGA_PID")

	# ---- keys ----
	ssh-keygen -q -t ed25519 -N '' -f "$d/client_key" -C bench
	cp "$d/client_key.pub" "$d/root/.ssh/authorized_keys"
	ssh-keygen -q -t ed25519 -N '' -f "$d/sshd_host_key"
	dropbearkey -t ed25519 -f "$d/dropbear_host_key" >/dev/null 2>&1

	# ---- OpenSSH's sshd ----
	SSHD_PORT=$(peer_port)
	cat >"$d/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $d/sshd_host_key
PidFile none
AuthorizedKeysFile $d/root/.ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
KexAlgorithms $PEER_KEX
MaxStartups 1000
MaxSessions 1000
EOF
	if [ ! -d /run/sshd ]; then
		mkdir -p /run/sshd
		PEER_MADE_RUN_SSHD=1
	fi
	peer_clean_root /usr/sbin/sshd -D -e -f "$d/sshd_config" 2>"$d/sshd.log" &
	SSHD_PID=$!
	PEER_PIDS+=("$SSHD_PID")

	# ---- dropbear (-s: no passwords; keys from /root/.ssh, which is $d/root) ----
	DROPBEAR_PORT=$(peer_port)
	peer_clean_root dropbear -F -E -s -p "127.0.0.1:$DROPBEAR_PORT" \
		-r "$d/dropbear_host_key" -P "$d/dropbear.pid" 2>"$d/dropbear.log" &
	DROPBEAR_PID=$!
	PEER_PIDS+=("$DROPBEAR_PID")

	# The client: no user configuration, no host key prompts, the fast
	# key exchange (SSH_BASE), and a clean HOME (SSH_CMD; a program that
	# runs SSH_BASE itself is given HOME=$SSH_HOME).
	SSH_HOME=$d/client-home
	SSH_BASE=(ssh -n -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no
		-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o IdentitiesOnly=yes
		-i "$d/client_key" -o KexAlgorithms=$PEER_KEX)
	SSH_CMD=(env HOME="$SSH_HOME" "${SSH_BASE[@]}")

	for _ in $(seq 100); do [ -S "$QGA_SOCK" ] && break; sleep 0.05; done
	[ -S "$QGA_SOCK" ] || { peer_say "qemu-ga did not start: $(cat "$d/qga.log")"; return 1; }
	peer_wait_tcp "$SSHD_PORT" sshd || { cat "$d/sshd.log" >&2; return 1; }
	peer_wait_tcp "$DROPBEAR_PORT" dropbear || { cat "$d/dropbear.log" >&2; return 1; }
	# Both must run a command, from a clean home.
	local h
	h=$("${SSH_CMD[@]}" -p "$SSHD_PORT" root@127.0.0.1 'echo $HOME; ls -A ~ | tr "\n" " "') ||
		{ peer_say "ssh to sshd failed: $(tail -3 "$d/sshd.log")"; return 1; }
	[ "$h" = "/root
.ssh " ] || { peer_say "sshd's session does not start clean: $h"; return 1; }
	"${SSH_CMD[@]}" -p "$DROPBEAR_PORT" root@127.0.0.1 true ||
		{ peer_say "ssh to dropbear failed: $(tail -3 "$d/dropbear.log")"; return 1; }
}

# A ControlMaster connection to sshd; SSH_MUX_BASE (with HOME=$SSH_HOME)
# runs a command over it.
peers_mux_start() {
	local d=$PEER_DIR
	"${SSH_CMD[@]}" -N -o ControlMaster=yes -o ControlPath="$d/mux" -p "$SSHD_PORT" \
		root@127.0.0.1 2>"$d/mux.log" &
	PEER_PIDS+=("$!")
	for _ in $(seq 100); do [ -S "$d/mux" ] && break; sleep 0.05; done
	[ -S "$d/mux" ] || { peer_say "ssh ControlMaster did not start: $(cat "$d/mux.log")"; return 1; }
	SSH_MUX_BASE=("${SSH_BASE[@]}" -o ControlMaster=no -o ControlPath="$d/mux" -p "$SSHD_PORT")
}

peers_stop() {
	local p
	for p in "${PEER_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PEER_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	done
	PEER_PIDS=()
	[ -n "$PEER_MADE_RUN_SSHD" ] && rmdir /run/sshd 2>/dev/null
	PEER_MADE_RUN_SSHD=
	return 0
}

peers_versions() {
	echo "qemu-ga $(qemu-ga --version 2>&1 | awk '{print $NF; exit}')," \
		"$(ssh -V 2>&1 | cut -d, -f1) (client and sshd)," \
		"$(dropbear -V 2>&1 | head -1 | awk '{print $1, $2}')," \
		"$(socat -V 2>/dev/null | awk '/socat version/ {print "socat", $3; exit}')"
}

# ---- memory of a process tree ----

# The pids of ROOT and its descendants whose command name is one of
# NAMES (a |-separated list).
tree_pids() { # ROOT NAMES
	ps -e -o pid=,ppid=,comm= | awk -v root="$1" -v names="$2" '
		{ parent[$1] = $2; comm[$1] = $3 }
		END {
			n = split(names, w, "|"); for (i = 1; i <= n; i++) want[w[i]] = 1
			for (p in parent) {
				q = p
				while (q != "" && q != root && q > 1) q = parent[q]
				if (q == root && (comm[p] in want)) print p
			}
		}'
}

# "RSS_KiB PSS_KiB COUNT" summed over the given pids.
mem_of() {
	local p rss=0 pss=0 n=0 r s
	for p in "$@"; do
		r=$(awk '/^Rss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		s=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null) || continue
		[ -n "$r" ] || continue
		rss=$((rss + r)) pss=$((pss + s)) n=$((n + 1))
	done
	echo "$rss $pss $n"
}
