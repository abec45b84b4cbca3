#!/bin/bash
# System tests for port forwarding and SSH: a real sandbox under QEMU, and
# every byte over virtio-vsock (the guest has no network device). An HTTP
# server in the guest (busybox httpd on the minimal image, Python's
# http.server on Debian) is fetched with curl through `sbx expose`; the
# guest's dropbear is reached with the real OpenSSH client through
# `sbx ssh`. It passes on either image (SBX_TEST_IMAGE).
. "$(dirname "$0")/../lib.sh"

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'
ID=net1
BIG=52428800

sha() { sha256sum | cut -d' ' -f1; }

test_create() {
	"$SBX" create --name $ID --lifetime 10m --env SBXENV=from-create >"$T_TMP/id" \
		2>"$T_TMP/create.err" ||
		fail "create: $(cat "$T_TMP/create.err")" || return 1
	expect_eq id "$(cat "$T_TMP/id")" $ID || return 1
	# A 50 MiB file and an HTTP server on guest port 8080, as root (/srv).
	WANT=$("$SBX" exec -u root $ID -- sh -c "mkdir -p /srv && head -c $BIG /dev/urandom >/srv/big &&
		if command -v httpd >/dev/null; then httpd -p 127.0.0.1:8080 -h /srv
		else setsid python3 -m http.server 8080 --bind 127.0.0.1 --directory /srv \
			</dev/null >/dev/null 2>&1 &
			until python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8080))' \
				2>/dev/null; do sleep 0.2; done
		fi && sha256sum /srv/big" | cut -d' ' -f1)
	[ ${#WANT} -eq 64 ] || fail "guest setup said: $WANT"
}

test_expose_50m() {
	URL=$("$SBX" expose --detach $ID 8080 2>"$T_TMP/expose.err") ||
		fail "expose: $(cat "$T_TMP/expose.err")" || return 1
	[[ $URL =~ ^http://127\.0\.0\.1:[0-9]+/$ ]] || fail "URL: $URL" || return 1
	expect_eq "sha256 of 50 MiB through sbx expose" "$(curl -sS --max-time 60 "${URL}big" | sha)" \
		"$WANT"
}

test_expose_50_concurrent() {
	local i bad=0
	for i in $(seq 1 50); do
		curl -sS --max-time 120 "${URL}big" | sha >"$T_TMP/c.$i" &
	done
	wait
	for i in $(seq 1 50); do
		[ "$(cat "$T_TMP/c.$i")" == "$WANT" ] || bad=$((bad + 1))
	done
	expect_eq "fetches with a wrong hash" $bad 0
}

test_refused() {
	local out rc
	out=$("$SBX" expose --stdio $ID 9 </dev/null 2>&1)
	rc=$?
	expect_eq status $rc 125 && [[ $out == *"nothing listens on port 9 in the sandbox"* ]] ||
		fail "said: $out"
}

# The minimal image's wget: -T crashed Debian's busybox-static (status
# 139); ours has the feature: a download works with it and a silent server
# times out. Another image gets that busybox (wget, nc) in /usr/local/bin.
test_wget_timeout() {
	local out
	if [ "$SBX_IMAGE" != minimal ]; then
		"$SBX" exec -i -u root $ID -- sh -c 'cat >/usr/local/bin/busybox &&
			chmod 755 /usr/local/bin/busybox && ln -sf busybox /usr/local/bin/wget &&
			ln -sf busybox /usr/local/bin/nc' <"$BUILD/busybox/busybox" ||
			fail "cannot install the minimal image's busybox" || return 1
	fi
	out=$("$SBX" exec -u root $ID -- sh -c 'echo small-ok >/srv/small
		wget -q -T 5 -O- http://127.0.0.1:8080/small; echo "rc=$?"
		(sleep 30 | nc -l -p 9099) >/dev/null 2>&1 &
		sleep 1; s=$(date +%s)
		wget -T 2 -O- http://127.0.0.1:9099/ 2>&1; echo "rc=$? took=$(($(date +%s) - s))"')
	[[ $out == *"small-ok"*"rc=0"* ]] || fail "wget -T 5 of a page: $out" || return 1
	[[ $out == *"download timed out"*"rc=1 took="[2-5]* ]] || fail "wget -T 2, silent server: $out"
}

test_exposures_listed() {
	local out
	out=$("$SBX" expose --list $ID)
	[[ $out == *"8080   $URL"*background* ]] || fail "listed: $out"
}

test_ssh_uname() {
	local out
	out=$("$SBX" ssh $ID -- uname -a 2>&1)
	[[ $out == "Linux $ID "*cloud-amd64* ]] || fail "uname -a: $out"
}

# The SSH server and its logins are workloads like any command: in the
# workloads' cgroup, killable by the OOM killer (the agent is not).
test_sshd_is_a_workload() {
	local out
	# A login inherits both from the server: a cgroup namespace of its
	# own (only workloads have one, rooted at their cgroup) and an OOM
	# score of 0 (the agent's is -1000).
	out=$("$SBX" ssh $ID -- 'cat /proc/self/cgroup /proc/self/oom_score_adj')
	[[ $out == "0::/"$'\n0' ]] || fail "cgroup and OOM score: $out"
}

# The sandbox environment reaches SSH logins as it reaches commands, and a
# change by `sbx env` reaches the next login.
test_ssh_env() {
	expect_eq "--env in an SSH login" "$("$SBX" ssh $ID -- 'echo $SBXENV' </dev/null)" \
		from-create || return 1
	"$SBX" env $ID set SBXENV=changed || return 1
	expect_eq "sbx env set, then a new login" \
		"$("$SBX" ssh $ID -- 'echo $SBXENV' </dev/null)" changed || return 1
	"$SBX" env $ID set SBXENV=from-create
}

test_ssh_status() {
	"$SBX" ssh $ID -- 'exit 42' </dev/null
	expect_eq "the command's status" $? 42
}

test_ssh_shell() {
	local out
	# A terminal on our side; the shell in the guest gets one too.
	(sleep 2; printf 'echo $((6*7)) $(tty)\n'; sleep 1; printf 'exit 3\n') |
		timeout 60 script -qec "$SBX ssh $ID" /dev/null >"$T_TMP/shell.out"
	expect_eq "shell status" "${PIPESTATUS[1]}" 3 || return 1
	# bash writes terminal escapes (bracketed paste, the title) around it.
	out=$(tr -d '\r' <"$T_TMP/shell.out")
	[[ $out == *"42 /dev/pts/"* ]] || fail "the shell said: $out"
}

# The command line `sbx ssh --print` gives, with key K instead of sbx's.
ssh_with_key() { # KEY CMD...
	local key=$1 cmd
	shift
	cmd=$("$SBX" ssh --print $ID -- "$@") || return 1
	eval "${cmd//$SBX_STATE_DIR\/.ssh\/id_ed25519/$key}"
}

test_ssh_removed_key() {
	local out
	ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/tk"
	"$SBX" ssh --add-key "$T_TMP/tk.pub" $ID || return 1
	expect_eq "with the added key" "$(ssh_with_key "$T_TMP/tk" echo in </dev/null)" in || return 1
	"$SBX" ssh --remove-key "$T_TMP/tk.pub" $ID || return 1
	out=$(ssh_with_key "$T_TMP/tk" echo in </dev/null 2>&1)
	expect_eq "status after removal" $? 255 && [[ $out == *"Permission denied"* ]] ||
		fail "ssh said: $out"
}

test_ssh_wrong_host_key() {
	local cmd out kh=$SBX_STATE_DIR/$ID/known_hosts
	cmd=$("$SBX" ssh --print $ID -- echo hi) || return 1
	ssh-keygen -q -t ed25519 -N '' -f "$T_TMP/other"
	echo "sbx-$ID $(cut -d' ' -f1,2 "$T_TMP/other.pub")" >"$kh"
	out=$(eval "timeout 60 $cmd" </dev/null 2>&1)
	expect_eq status $? 255 && [[ $out == *"Host key verification failed"* ]] ||
		fail "ssh said: $out"
}

test_scp_10m() {
	head -c 10M /dev/urandom >"$T_TMP/ten"
	"$SBX" ssh --scp $ID "$T_TMP/ten" :/tmp/ten || return 1
	expect_eq "in the guest" "$("$SBX" exec $ID -- sha256sum /tmp/ten | cut -d' ' -f1)" \
		"$(sha <"$T_TMP/ten")" || return 1
	"$SBX" ssh --scp $ID :/tmp/ten "$T_TMP/back" || return 1
	expect_eq "back on the host" "$(sha <"$T_TMP/back")" "$(sha <"$T_TMP/ten")"
}

test_ssh_expose() {
	local out cmd user
	# The login is the sandbox's default user: root, app on Debian.
	user=$("$SBX" exec $ID -- id -un) || return 1
	out=$("$SBX" ssh --expose $ID) || return 1
	grep -q '^hostname: 127.0.0.1$' <<<"$out" && grep -q "^username: $user$" <<<"$out" ||
		fail "printed: $out" || return 1
	cmd=$(sed -n 's/^command:  //p' <<<"$out")
	expect_eq "the printed command" "$(eval "$cmd hostname" </dev/null 2>&1)" $ID
}

test_gone_after_kill() {
	local pids
	pids=$("$SBX" expose --list $ID | awk '{print $4}')
	[ "$(wc -w <<<"$pids")" -eq 2 ] || fail "exposures: $pids" || return 1
	"$SBX" kill $ID || return 1
	for p in $pids; do
		wait_for 5 sh -c "! ps -o stat= -p $p | grep -qv Z" || fail "exposer $p survived" ||
			return 1
	done
	curl -sS --max-time 5 "$URL" >/dev/null 2>&1 && fail "$URL still answers"
	return 0
}

t "create a sandbox with httpd serving 50 MiB" test_create
t "sbx expose --detach: 50 MiB, hash matches" test_expose_50m
t "50 concurrent fetches of 50 MiB, every hash matches" test_expose_50_concurrent
t "a refused port: an error that says so" test_refused
t "sbx expose --list shows the exposure" test_exposures_listed
t "minimal image: wget -T fetches, and times out on a silent server" test_wget_timeout
t "sbx ssh ID -- uname -a (OpenSSH client)" test_ssh_uname
t "the SSH server and its logins are workloads" test_sshd_is_a_workload
t "sbx ssh: --env and sbx env reach the login's environment" test_ssh_env
t "sbx ssh: the command's exit status" test_ssh_status
t "sbx ssh: an interactive shell on a terminal" test_ssh_shell
t "a removed key no longer logs in" test_ssh_removed_key
t "a wrong host key is refused" test_ssh_wrong_host_key
t "scp of 10 MiB, both ways" test_scp_10m
t "sbx ssh --expose: a command that logs in" test_ssh_expose
t "exposures end with the sandbox" test_gone_after_kill
