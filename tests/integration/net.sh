#!/bin/bash
# Integration tests for port forwarding and SSH in development mode: the
# real sbx-init and the real sbx over a Unix socket. Small Python services
# on this host stand in for programs in the sandbox (net_peer.py). The SSH
# tests run the agent in its own mount and network namespaces, so its
# dropbear gets a private 127.0.0.1:22 and homes on tmpfs, and log in with
# the real OpenSSH client.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/agent.sh"

PY=/usr/bin/python3
PEER=$ROOT/tests/integration/net_peer.py
export SBX_STATE_DIR=$T_TMP/state

sha() { sha256sum | cut -d' ' -f1; }

# serve MODE [BIND [ARG]]: starts a peer service; sets PORT.
serve() {
	local out=$T_TMP/peer.$RANDOM
	"$PY" "$PEER" serve "$@" >"$out" 2>>"$T_TMP/peer.log" &
	on_exit "kill $!"
	wait_for 10 test -s "$out" || fail "peer $1 did not start" || return 1
	PORT=$(cat "$out")
}

# expose_bg PORT: `sbx expose PORT` in the background; sets URL, EXP_PID.
expose_bg() {
	local out=$T_TMP/expose.$RANDOM
	"$SBX" expose "$@" >"$out" 2>>"$T_TMP/expose.err" &
	EXP_PID=$!
	on_exit "kill $EXP_PID"
	wait_for 10 test -s "$out" || fail "expose printed no URL: $(cat "$T_TMP/expose.err")" ||
		return 1
	URL=$(cat "$out")
	HOST_PORT=${URL##*:}
	HOST_PORT=${HOST_PORT%/}
}

server_fds() { ls "/proc/$(server_pid)/fd" | wc -l; }

test_echo_stdio() {
	serve echo || return 1
	ECHO_PORT=$PORT
	expect_eq echo "$(echo hello through vsock | "$SBX" expose --stdio "$ECHO_PORT")" \
		"hello through vsock"
}

# The client half-closes: the service sees EOF, and its answer still
# comes back afterwards.
test_client_half_close() {
	serve hash || return 1
	head -c 64M /dev/urandom >"$T_TMP/in64"
	expect_eq "sha256 computed by the service" \
		"$("$SBX" expose --stdio "$PORT" <"$T_TMP/in64")" "$(sha <"$T_TMP/in64")"
}

# The service half-closes first: the client sees its EOF, and what the
# client sends afterwards still reaches the service.
test_server_half_close() {
	local out
	serve halfclose 127.0.0.1 "$T_TMP/late.sha" || return 1
	head -c 8M /dev/urandom >"$T_TMP/late"
	out=$( (sleep 0.5; cat "$T_TMP/late") | "$SBX" expose --stdio "$PORT")
	expect_eq "greeting, then EOF" "$out" hello || return 1
	wait_for 10 test -s "$T_TMP/late.sha" || fail "the service never saw EOF" || return 1
	expect_eq "bytes sent after the service's EOF" "$(cat "$T_TMP/late.sha")" \
		"$(sha <"$T_TMP/late")"
}

test_expose_large_both_ways() {
	expose_bg "$ECHO_PORT" || return 1
	[[ $URL =~ ^http://127\.0\.0\.1:[0-9]+/$ ]] || fail "URL: $URL" || return 1
	expect_eq "64 MiB echoed" "$("$PY" "$PEER" send 127.0.0.1 "$HOST_PORT" <"$T_TMP/in64" | sha)" \
		"$(sha <"$T_TMP/in64")"
}

test_expose_many() {
	expect_eq "concurrent round trips that matched" \
		"$("$PY" "$PEER" many 127.0.0.1 "$HOST_PORT" 200 65536)" 200
}

test_server_closes_first() {
	local out start=$SECONDS
	serve first || return 1
	expose_bg "$PORT" || return 1
	out=$(timeout 10 "$PY" "$PEER" send 127.0.0.1 "$HOST_PORT" < <(sleep 1))
	expect_eq "what the service said before closing" "$out" bye || return 1
	[ $((SECONDS - start)) -lt 5 ] || fail "took $((SECONDS - start)) s"
}

test_refused() {
	local out rc
	out=$("$SBX" expose --stdio 1 </dev/null 2>&1)
	rc=$?
	expect_eq status $rc 125 || return 1
	[[ $out == *"nothing listens on port 1 in the sandbox"* ]] || fail "said: $out" || return 1
	# Through a listener: an HTTP client gets a 502 saying why (issue 18,
	# item 15), a plain TCP client a closed connection; sbx says why.
	expose_bg 1 || return 1
	out=$(curl -sS --max-time 10 -w '%{http_code}' "$URL" 2>&1)
	[[ $out == *"nothing listens on port 1 in the sandbox"*502 ]] || fail "curl said: $out" ||
		return 1
	local hostport=${URL#http://}
	out=$(printf 'hello\n' | timeout 10 socat -t 5 - "TCP:${hostport%/}" 2>/dev/null)
	expect_eq "a plain TCP client gets nothing" "$out" "" || return 1
	wait_for 5 grep -q "nothing listens on port 1 in the sandbox" "$T_TMP/expose.err" ||
		fail "sbx said: $(cat "$T_TMP/expose.err")"
}

test_bad_ports_cli() {
	local p out
	for p in 0 70000 x; do
		out=$("$SBX" expose "$p" 2>&1)
		expect_eq "status for port $p" $? 2 || return 1
		[[ $out == *"invalid port '$p': a port is a number from 1 to 65535"* ]] ||
			fail "port $p: $out" || return 1
	done
}

# The agent checks ports itself: raw frames, HELLO then FORWARD (the port
# as 4 little-endian bytes, \x escapes), then EXTRA, all in one write.
forward_frame() { # PORT_BYTES [EXTRA]
	printf "\x08\x00\x00\x00\x01\x00\x00\x00SBX\x00\x01\x00\x01\x00\x0a\x00\x00\x00\x40\x00\x00\x00\x01\x00\x04\x00\x00\x00$1${2:-}"
}

test_bad_ports_agent() {
	local out
	out=$(forward_frame '\x00\x00\x00\x00' | timeout 5 socat -t 5 - "UNIX-CONNECT:$AGENT_SOCK" |
		tr -c '[:print:]' .)
	[[ $out == *"FORWARD: port 0 is out of range (1-65535)"* ]] || fail "port 0: $out" || return 1
	out=$(forward_frame '\x70\x11\x01\x00' | timeout 5 socat -t 5 - "UNIX-CONNECT:$AGENT_SOCK" |
		tr -c '[:print:]' .)
	[[ $out == *"FORWARD: port 70000 is out of range (1-65535)"* ]] || fail "port 70000: $out"
}

# Bytes sent before the OK belong to nobody: refused, not mixed up.
test_bytes_before_ok() {
	local out
	out=$(forward_frame "$(printf '\\x%02x\\x%02x\\x00\\x00' $((ECHO_PORT & 255)) \
		$((ECHO_PORT >> 8)))" 'too early' |
		timeout 5 socat -t 5 - "UNIX-CONNECT:$AGENT_SOCK" | tr -c '[:print:]' .)
	[[ $out == *"must wait for OK"* ]] || fail "said: $out"
}

test_ipv6_fallback() {
	serve echo ::1 || return 1
	expect_eq "service on ::1 only" "$(echo six | "$SBX" expose --stdio "$PORT")" six
}

test_bind_ipv6() {
	expose_bg "$ECHO_PORT" --bind ::1 || return 1
	[[ $URL == "http://[::1]:"*/ ]] || fail "URL: $URL" || return 1
	expect_eq echo "$(echo v6 | "$PY" "$PEER" send ::1 "$HOST_PORT")" v6
}

test_detach_needs_sandbox() {
	local out
	out=$("$SBX" expose --detach "$ECHO_PORT" 2>&1)
	expect_eq status $? 2 && [[ $out == *"--detach needs a sandbox id"* ]] || fail "said: $out"
}

# An agent with a token: a FORWARD connection answers its challenge too.
test_token() {
	local out tok=0123456789abcdef0123456789abcdef
	printf 'token = %s\n' "$tok" >"$T_TMP/token.conf"
	"$SBX_INIT" --listen "unix:$T_TMP/tok.sock" --config "$T_TMP/token.conf" \
		>>"$T_TMP/tok.log" 2>&1 &
	on_exit "kill $!"
	wait_for 10 test -S "$T_TMP/tok.sock" || fail "no agent: $(cat "$T_TMP/tok.log")" || return 1
	expect_eq "with the token" "$(echo tok | SBX_TOKEN=$tok "$SBX" --connect "unix:$T_TMP/tok.sock" \
		expose --stdio "$ECHO_PORT")" tok || return 1
	out=$(echo x | SBX_TOKEN= "$SBX" --connect "unix:$T_TMP/tok.sock" expose --stdio \
		"$ECHO_PORT" 2>&1)
	[[ $out == *"requires a token"* ]] || fail "without: $out" || return 1
	out=$(echo x | SBX_TOKEN=${tok/0/1} "$SBX" --connect "unix:$T_TMP/tok.sock" expose --stdio \
		"$ECHO_PORT" 2>&1)
	[[ $out == *"authentication failed"* ]] || fail "wrong token: $out"
}

test_no_fd_leak() {
	# Every relay above has ended: the server holds what it held before.
	wait_for 5 test "$(server_fds)" -le "$FDS_BEFORE" ||
		fail "the server holds $(server_fds) fds, $FDS_BEFORE before"
}

# ---- SSH, in private namespaces ----

start_ssh_agent() {
	SSH_SOCK=$T_TMP/ssh-agent.sock
	printf '%s\n' "root:x:0:0:root:/root:/bin/sh" "user:x:1000:1000:user:/home/user:/bin/sh" \
		>"$T_TMP/passwd"
	printf '%s\n' "root:x:0:" "user:x:1000:" >"$T_TMP/group"
	unshare --mount --net --fork -- sh -c '
		mount -t tmpfs -o mode=755 none /run &&
		mount -t tmpfs -o mode=700 none /root &&
		mount -t tmpfs -o mode=755 none /home &&
		mkdir -m 700 /home/user && chown 1000:1000 /home/user &&
		mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group &&
		ip link set lo up && exec "$3" --listen "unix:$4"' \
		sh "$T_TMP/passwd" "$T_TMP/group" "$SBX_INIT" "$SSH_SOCK" >>"$T_TMP/ssh-agent.log" 2>&1 &
	SSH_JOB=$!
	# unshare ignores SIGTERM while it waits: stop the agent itself.
	wait_for 5 has_children $SSH_JOB || return 1
	on_exit "stop_agent $(children_of $SSH_JOB) $SSH_JOB"
	wait_for 10 test -S "$SSH_SOCK" || fail "no agent: $(cat "$T_TMP/ssh-agent.log")"
}

X() { "$SBX" --connect "unix:$SSH_SOCK" "$@"; }

test_ssh_command() {
	local out
	out=$(X ssh -- uname -r 2>&1)
	expect_eq "uname -r over ssh" "$out" "$(uname -r)" || { cat "$T_TMP/ssh-agent.log" >&2; return 1; }
	X ssh -- 'exit 7' </dev/null
	expect_eq "the command's exit status" $? 7
}

test_ssh_client_key() {
	local key=$SBX_STATE_DIR/.ssh/id_ed25519
	expect_eq "private key mode" "$(stat -c %a "$key")" 600 || return 1
	# OpenSSH reads sbx's key file and derives the same public key.
	expect_eq "public key" "$(ssh-keygen -y -f "$key" | cut -d' ' -f1,2)" \
		"$(cut -d' ' -f1,2 "$key.pub")"
}

test_ssh_other_user() {
	expect_eq "logged in as" "$(X ssh -u user -- id -un)" user || return 1
	expect_eq "modes and owners" \
		"$(X exec -- stat -c '%a %u %g' /home/user/.ssh /home/user/.ssh/authorized_keys)" \
		$'700 1000 1000\n600 1000 1000'
}

test_ssh_keys() {
	local out
	ssh-keygen -q -t ed25519 -N '' -C "test key" -f "$T_TMP/tk"
	X ssh --add-key "$T_TMP/tk.pub" || return 1
	X ssh --add-key - <"$T_TMP/tk.pub" || return 1 # twice: still once
	out=$(X ssh --list-keys)
	expect_eq "keys listed" "$(grep -c . <<<"$out")" 2 || return 1
	[[ $out == *"$(cut -d' ' -f2 "$T_TMP/tk.pub") test key"* ]] || fail "list: $out" || return 1
	# The file was rewritten atomically: no temporary file is left.
	expect_eq "files in ~/.ssh" "$(X exec -- ls -A /root/.ssh)" authorized_keys
}

test_ssh_malformed_key() {
	local out
	echo "ssh-rsa AAAAnotakey user@host" >"$T_TMP/bad.pub"
	out=$(X ssh --add-key "$T_TMP/bad.pub" 2>&1)
	expect_eq status $? 125 || return 1
	[[ $out == *"malformed key"* ]] || fail "said: $out" || return 1
	# The agent refuses it on its own too (a raw frame).
	out=$( (printf '\x08\x00\x00\x00\x01\x00\x00\x00SBX\x00\x01\x00\x01\x00'
		printf '\x0d\x00\x00\x00\x42\x00\x00\x00\x02\x00\x07\x00\x00\x00ssh-foo') |
		timeout 5 socat -t 5 - "UNIX-CONNECT:$SSH_SOCK" | tr -c '[:print:]' .)
	[[ $out == *"malformed key: unknown key type 'ssh-foo'"* ]] || fail "agent said: $out"
}

# The command line `sbx ssh --print` gives, with key K instead of sbx's.
ssh_with_key() { # KEY CMD...
	local key=$1 cmd
	shift
	cmd=$(X ssh --print -- "$@") || return 1
	eval "${cmd//$SBX_STATE_DIR\/.ssh\/id_ed25519/$key}"
}

test_ssh_removed_key() {
	local out
	expect_eq "with the added key" "$(ssh_with_key "$T_TMP/tk" echo in </dev/null)" in || return 1
	X ssh --remove-key "$T_TMP/tk.pub" || return 1
	out=$(ssh_with_key "$T_TMP/tk" echo in </dev/null 2>&1)
	expect_eq "status after removal" $? 255 || return 1
	[[ $out == *"Permission denied"* ]] || fail "ssh said: $out" || return 1
	out=$(X ssh --remove-key "$T_TMP/tk.pub" 2>&1)
	[[ $out == *"is not authorized for root"* ]] || fail "second removal: $out"
}

test_ssh_wrong_host_key() {
	local cmd kh out
	cmd=$(X ssh --print -- echo hi) || return 1
	kh=$(ls "$SBX_STATE_DIR"/.ssh/known_hosts-*)
	ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/other"
	# Same alias, another key: exactly what an impostor would present.
	echo "$(cut -d' ' -f1 "$kh") $(cut -d' ' -f1,2 "$T_TMP/other.pub")" >"$kh"
	out=$(eval "timeout 20 $cmd" </dev/null 2>&1)
	expect_eq status $? 255 || return 1
	[[ $out == *"Host key verification failed"* ]] || fail "ssh said: $out"
}

test_ssh_host_key_stable() {
	local kh a b
	X ssh -- true || return 1
	kh=$(ls "$SBX_STATE_DIR"/.ssh/known_hosts-*)
	a=$(cat "$kh")
	X ssh -- true || return 1
	b=$(cat "$kh")
	expect_eq "host key across logins" "$b" "$a"
}

test_ssh_server_restarts() {
	# Killed, and gone (a zombie for the agent to reap) before we log in.
	X exec -- sh -c 'p=$(cat /run/sbx-ssh/dropbear.pid); kill $p
		while grep -q "^State:[[:space:]]*[^Z]" /proc/$p/status 2>/dev/null; do sleep 0.01; done' ||
		return 1
	expect_eq "after the server was killed" "$(X ssh -- echo back 2>&1)" back
}

test_ssh_expose() {
	local out=$T_TMP/ssh-expose cmd
	: >"$out"
	# Not through X: $! must be sbx itself, not a subshell running X, or
	# the kill at exit leaves sbx running.
	"$SBX" --connect "unix:$SSH_SOCK" ssh --expose >"$out" 2>&1 &
	on_exit "kill $!"
	wait_for 10 grep -q '^command:' "$out" || fail "printed: $(cat "$out")" || return 1
	grep -q '^hostname: 127.0.0.1$' "$out" && grep -q '^username: root$' "$out" &&
		grep -q '^port:     [0-9]' "$out" || fail "printed: $(cat "$out")" || return 1
	cmd=$(sed -n 's/^command:  //p' "$out")
	expect_eq "the printed command" "$(eval "$cmd -- echo exposed" </dev/null 2>&1)" exposed
}

# Under make asan: the sanitizers report into these logs.
test_no_sanitizer_reports() {
	! grep -q -E "AddressSanitizer|LeakSanitizer|runtime error" "$AGENT_LOG" \
		"$T_TMP/ssh-agent.log" "$T_TMP/expose.err" 2>/dev/null ||
		fail "sanitizer reports: $(grep -h -A5 -E "Sanitizer|runtime error" "$AGENT_LOG" \
			"$T_TMP/ssh-agent.log" "$T_TMP/expose.err" 2>/dev/null | head -40)"
}

start_agent dev || { echo "not ok - $SUITE: agent starts"; exit 1; }
FDS_BEFORE=$(server_fds)
t "echo through sbx expose --stdio" test_echo_stdio
t "client half-close: 64 MiB in, the service's answer after EOF" test_client_half_close
t "service half-close: EOF out, 8 MiB in afterwards" test_server_half_close
t "sbx expose: a URL, 64 MiB echoed both ways" test_expose_large_both_ways
t "sbx expose: 200 concurrent connections" test_expose_many
t "a service that closes first" test_server_closes_first
t "a refused port: an error that says so" test_refused
t "ports 0 and 70000 refused by sbx" test_bad_ports_cli
t "ports 0 and 70000 refused by the agent" test_bad_ports_agent
t "bytes before the OK are refused" test_bytes_before_ok
t "a service on ::1 only" test_ipv6_fallback
t "--bind ::1" test_bind_ipv6
t "--detach needs a sandbox" test_detach_needs_sandbox
t "an agent with a token" test_token
t "the agent holds no fds afterwards" test_no_fd_leak

start_ssh_agent || { echo "not ok - $SUITE: ssh agent starts"; exit 1; }
t "ssh: a command and its exit status" test_ssh_command
t "ssh: sbx's client key is an OpenSSH key" test_ssh_client_key
t "ssh: another user; ~/.ssh 0700 and authorized_keys 0600, theirs" test_ssh_other_user
t "ssh: add (idempotent) and list keys" test_ssh_keys
t "ssh: a malformed key is refused" test_ssh_malformed_key
t "ssh: a removed key no longer logs in" test_ssh_removed_key
t "ssh: a wrong host key is refused" test_ssh_wrong_host_key
t "ssh: the host key stays the same" test_ssh_host_key_stable
t "ssh: the server is restarted when it dies" test_ssh_server_restarts
t "ssh --expose: hostname, port, user and a command that works" test_ssh_expose
t_sanitizers "no sanitizer reports from the agents or sbx expose" test_no_sanitizer_reports
