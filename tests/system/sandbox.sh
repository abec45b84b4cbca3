#!/bin/bash
# System tests: real sandboxes. `sbx create` boots the guest image under
# QEMU (TCG here) with sbx-vsockd, and everything below goes over real
# virtio-vsock to sbx-init running as the VM's PID 1. The sandboxes boot
# the default image, Debian (commands run as `app`).
. "$(dirname "$0")/../lib.sh"
unset SBX_IMAGE

export SBX_STATE_DIR=$T_TMP/state
on_exit 'for d in "$SBX_STATE_DIR"/*/; do [ -d "$d" ] && "$SBX" kill "$(basename "$d")"; done'

# The processes and files a sandbox has while it runs.
leftovers() { # ID
	pgrep -af "$SBX_STATE_DIR/$1/" || true
	[ -e "$SBX_STATE_DIR/$1" ] && echo "state directory $SBX_STATE_DIR/$1"
	return 0
}

test_create() {
	# (a small console log, for test_console_rotated)
	ID=$(SBX_CONSOLE_LOG_MAX=262144 "$SBX" create --name sys1 --lifetime 10m --memory 1024 --env GREETING='hello there' \
		--label team=core --label tier=test 2>"$T_TMP/create.err")
	expect_eq "create printed the id" "$ID" sys1 || { cat "$T_TMP/create.err" >&2; return 1; }
	"$SBX" ls | grep -q '^sys1 ' || fail "ls does not list it: $("$SBX" ls)"
}

# The server brings lo up after READY, before it reads a request: the
# first command already finds it up (flags: IFF_UP).
test_first_exec_lo() {
	local flags
	flags=$("$SBX" exec "$ID" -- cat /sys/class/net/lo/flags) || return 1
	(( flags & 1 )) || fail "lo is down for the first command: flags $flags"
}

# tsc=reliable: the clocksource watchdog never swaps TCG's TSC for 4 ms
# jiffies, however busy the host (tsc-early until the kernel's refined
# calibration, about a second after boot, registers tsc).
test_clock_tsc() {
	local cs
	cs=$("$SBX" exec "$ID" -- cat /sys/devices/system/clocksource/clocksource0/current_clocksource)
	[[ $cs == tsc || $cs == tsc-early ]] || fail "clocksource: $cs"
}

# PID 1 loads the balloon after READY (init/pid1.c), then sets order-5
# free-page reporting.
balloon_ready() {
	[ "$("$SBX" exec "$ID" -- sh -c 'test -d /sys/module/virtio_balloon &&
		cat /sys/module/page_reporting/parameters/page_reporting_order')" = 5 ]
}
test_late_balloon() {
	wait_for 10 balloon_ready || fail "no balloon, or page_reporting_order is not 5"
}

# In a VM the server resets no signal disposition (PID 1 ignores none):
# a command still starts with none ignored and none blocked.
test_signals_default() {
	expect_eq "SigIgn and SigBlk of a command" \
		"$("$SBX" exec "$ID" -- grep -E '^Sig(Ign|Blk):' /proc/self/status | tr -s '\t' ' ')" \
		$'SigBlk: 0000000000000000\nSigIgn: 0000000000000000'
}

test_echo() {
	expect_eq echo "$("$SBX" exec "$ID" -- echo hello from the guest)" "hello from the guest"
}

test_really_a_vm() {
	local out
	# A command's /proc does not show PID 1: the agent's file operations
	# see its own.
	out=$("$SBX" exec "$ID" -- sh -c 'echo $$; uname -r; hostname'; "$SBX" fs cat "$ID" /proc/1/cmdline |
		tr "\0" " ")
	[[ $out == *cloud-amd64* ]] || fail "not the guest kernel: $out" || return 1
	[[ $out == *$'\nsys1\n'* ]] || fail "hostname is not the id: $out" || return 1
	[[ $out == *"/init "* || $out == *"/init" ]] || fail "PID 1 is not sbx-init: $out"
}

test_default_debian() {
	expect_eq "os-release and user" \
		"$("$SBX" exec "$ID" -- bash -c '. /etc/os-release; echo $ID $VERSION_ID $(id -un)')" \
		"debian 12 app"
}

test_exit_codes() {
	local c
	for c in 0 1 42; do
		"$SBX" exec "$ID" -- sh -c "exit $c"
		expect_eq "exit $c" $? $c || return 1
	done
	"$SBX" exec "$ID" -- sh -c 'kill -9 $$'
	expect_eq "killed by SIGKILL" $? 137 || return 1
	"$SBX" exec "$ID" -- nosuch 2>/dev/null
	expect_eq "missing program" $? 127
}

test_stdin_16m() {
	head -c 16M /dev/urandom >"$T_TMP/in16"
	expect_eq sha256 "$("$SBX" exec -i "$ID" -- cat <"$T_TMP/in16" | sha256sum)" \
		"$(sha256sum <"$T_TMP/in16")"
}

# The agent reads a command's output into its queue for a vsock client and
# sends it in large writes: spliced into AF_VSOCK (Linux 6.1, no sendpage)
# it would leave as one 4 KiB packet per page, most of them one write of
# sbx-vsockd to the client (/proc/PID/io counts them). Measured 2026-12-06
# (minimal image): 16 MiB took ~650 writes, ~3900-4000 with an agent that
# spliced.
test_output_packets() {
	local v w0 w1 n
	v=$(pgrep -f "sbx-vsockd.*$SBX_STATE_DIR/$ID/" | head -1)
	[ -n "$v" ] || fail "no sbx-vsockd for $ID" || return 1
	w0=$(awk '/^syscw/ { print $2 }' "/proc/$v/io")
	n=$("$SBX" exec "$ID" -- dd if=/dev/zero bs=262144 count=64 2>/dev/null | wc -c)
	w1=$(awk '/^syscw/ { print $2 }' "/proc/$v/io")
	expect_eq bytes "$n" 16777216 || return 1
	[ $((w1 - w0)) -lt 1500 ] || fail "sbx-vsockd wrote 16 MiB of output in $((w1 - w0)) writes"
}

# --direct-stdout over real vsock: the command writes into an AF_VSOCK
# socket of its own; every byte arrives, then the status and stderr.
test_direct_stdout() {
	local rc want
	"$SBX" exec --direct-stdout "$ID" -- sh -c \
		'head -c 16M /dev/urandom | tee /tmp/direct16; echo to-stderr >&2; exit 3' \
		>"$T_TMP/d16" 2>"$T_TMP/d16.err"
	rc=$?
	expect_eq status "$rc" 3 || return 1
	expect_eq stderr "$(cat "$T_TMP/d16.err")" to-stderr || return 1
	want=$("$SBX" exec "$ID" -- sh -c 'sha256sum </tmp/direct16; rm /tmp/direct16')
	expect_eq sha256 "$(sha256sum <"$T_TMP/d16")" "$want"
}

# Its client killed mid-stream: the command is stopped (hung up on, its
# writes fail), the agent serves the next one.
test_direct_stdout_client_killed() {
	local tag=direct$RANDOM pid
	"$SBX" exec --direct-stdout "$ID" -- yes "$tag" >/dev/null &
	pid=$!
	# (pgrep in the guest: the client's command line is not there)
	wait_for 30 "$SBX" exec "$ID" -- pgrep -f "yes $tag" >/dev/null ||
		{ kill -KILL $pid; fail "the command did not start"; return 1; }
	sleep 0.5
	kill -KILL $pid
	wait $pid 2>/dev/null
	wait_for 10 test -z "$("$SBX" exec "$ID" -- pgrep -f "yes $tag")" ||
		fail "left in the guest: $("$SBX" exec "$ID" -- pgrep -af "yes $tag")" || return 1
	expect_eq "exec afterwards" "$("$SBX" exec --direct-stdout "$ID" -- echo served)" served
}

# A command that sets SO_LINGER on its fd 1, the direct stdout's socket
# (the agent's copy is the same socket), writes 320 KiB and exits while
# its client is stopped: the agent's close of it must not sleep in the
# kernel (6.1 virtio_transport_close) until the client has read it (320
# KiB is more than the Unix socket to the stopped client holds, so
# sbx-vsockd, which answers the close once it handed every byte on, keeps
# some; less than that plus the guest's credit, so the command ends).
# python3 is in the Debian image (its socket module takes only integer
# options on AF_VSOCK: libc's setsockopt through ctypes).
test_direct_stdout_linger() {
	local pid rc
	"$SBX" exec "$ID" -- rm -f /tmp/linger-set /tmp/linger-go /tmp/lingered || return 1
	"$SBX" exec --direct-stdout "$ID" -- python3 -c '
import ctypes, os, socket, struct, sys, time
libc = ctypes.CDLL(None, use_errno=True)
v = struct.pack("ii", 1, 1000000)
if libc.setsockopt(1, socket.SOL_SOCKET, socket.SO_LINGER, v, len(v)) != 0:
    raise OSError(ctypes.get_errno(), "setsockopt SO_LINGER on fd 1")
open("/tmp/linger-set", "w").close()
while not os.path.exists("/tmp/linger-go"):
    time.sleep(0.05)
sys.stdout.buffer.write(b"x" * 327680)
sys.stdout.flush()
open("/tmp/lingered", "w").close()' >"$T_TMP/linger.out" &
	pid=$!
	wait_for 30 timeout 5 "$SBX" exec "$ID" -- test -e /tmp/linger-set ||
		{ kill $pid; fail "the command did not start"; return 1; }
	kill -STOP $pid
	timeout 5 "$SBX" exec "$ID" -- touch /tmp/linger-go &&
		wait_for 20 timeout 5 "$SBX" exec "$ID" -- test -e /tmp/lingered ||
		{ kill -CONT $pid; kill $pid; fail "the command did not end"; return 1; }
	sleep 1
	expect_eq "the agent answers while the client is stopped" \
		"$(timeout 5 "$SBX" exec "$ID" -- echo alive)" alive
	rc=$?
	kill -CONT $pid
	wait $pid
	expect_eq "client status" $? 0 && expect_eq bytes "$(wc -c <"$T_TMP/linger.out")" 327680 &&
		[ $rc = 0 ]
}

test_stderr_apart() {
	"$SBX" exec "$ID" -- sh -c 'echo out; echo err >&2' >"$T_TMP/o" 2>"$T_TMP/e"
	expect_eq stdout "$(cat "$T_TMP/o")" out && expect_eq stderr "$(cat "$T_TMP/e")" err
}

test_pty() {
	local out
	out=$(script -qec "stty rows 33 cols 77; $SBX exec -t $ID -- sh -c 'tty; stty size'" /dev/null |
		tr -d '\r')
	[[ $out =~ ^/dev/pts/[0-9]+$'\n'"33 77"$ ]] || fail "got '$out'"
}

test_concurrent_20() {
	local i pids=()
	for i in $(seq 1 20); do
		"$SBX" exec "$ID" -- sh -c "echo out-$i; exit $((i % 5))" >"$T_TMP/c.$i" &
		pids[i]=$!
	done
	for i in $(seq 1 20); do
		wait ${pids[i]}
		expect_eq "exec $i status" $? $((i % 5)) || return 1
		expect_eq "exec $i output" "$(cat "$T_TMP/c.$i")" "out-$i" || return 1
	done
}

test_env() {
	expect_eq "--env at create" "$("$SBX" exec "$ID" -- sh -c 'echo "$GREETING"')" "hello there" &&
		expect_eq "--env at exec" "$("$SBX" exec --env X=1 "$ID" -- sh -c 'echo $X$GREETING')" \
			"1hello there"
}

test_memory() {
	local kb
	kb=$("$SBX" exec "$ID" -- awk '/MemTotal/ {print $2}' /proc/meminfo)
	# 1024 MiB minus what the kernel keeps for itself.
	[ "$kb" -gt 900000 ] && [ "$kb" -le 1048576 ] || fail "MemTotal is $kb kB"
}

test_info() {
	local out
	out=$("$SBX" info "$ID")
	[[ $out == *"memory:     1024 MiB"* && $out == *"team=core"* && $out == *"hostname:   sys1"* ]] ||
		fail "info said: $out"
	# An option after the id, as `--help` writes it ("info takes one sandbox
	# id" before main reset getopt fully for the subcommand).
	out=$("$SBX" info "$ID" --json) || fail "info ID --json failed: $out" || return 1
	[[ $out == "{"*'"memory_mib"'* ]] || fail "info ID --json said: $out"
}

test_guest_to_host() {
	# sbx-vsockd relays a guest connection to CID 2 port P to <uds>_P.
	local sock=$SBX_STATE_DIR/$ID/vsock.sock_5000
	socat -u "UNIX-LISTEN:$sock" "OPEN:$T_TMP/from-guest,creat" &
	local spid=$!
	wait_for 5 test -S "$sock" || fail "no listener" || return 1
	# vsock-tool is in the initramfs, not in the Debian image.
	"$SBX" cp "$BUILD/vsock-tool" "$ID:/tmp/vsock-tool" || return 1
	"$SBX" exec "$ID" -- sh -c 'echo relayed | /tmp/vsock-tool connect 2 5000'
	wait $spid
	expect_eq "received on the host" "$(cat "$T_TMP/from-guest")" relayed
}

test_kill() {
	"$SBX" kill "$ID" || return 1
	expect_eq "left behind" "$(leftovers "$ID")" "" || return 1
	"$SBX" exec "$ID" -- true 2>"$T_TMP/gone.err"
	expect_eq "exec after kill" $? 125 && grep -q "no such sandbox: sys1" "$T_TMP/gone.err" ||
		fail "said: $(cat "$T_TMP/gone.err")"
}

test_memory_refused() {
	local out
	for m in 512 5000 8GiB lots; do
		out=$("$SBX" create --memory $m 2>&1)
		expect_eq "status for --memory $m" $? 2 || return 1
		[[ $out == *"--memory $m"* ]] || fail "message: $out" || return 1
		# template create says it the same way, once
		out=$("$SBX" template create never --memory $m 2>&1)
		expect_eq "template create: status for --memory $m" $? 2 || return 1
		expect_eq "template create: '--memory $m' in the message" \
			"$(grep -o -- "--memory $m" <<<"$out" | wc -l)" 1 || return 1
	done
	expect_eq "nothing started" "$(ls "$SBX_STATE_DIR")" ""
}

test_bad_kernel() {
	local out
	out=$("$SBX" create --kernel /no/such/vmlinuz 2>&1)
	expect_eq status $? 125 &&
		[[ $out == *"cannot read the kernel /no/such/vmlinuz: No such file or directory"* ]] ||
		fail "message: $out" || return 1
	# A file that is not a kernel: QEMU fails, and we say so with its words.
	echo "not a kernel" >"$T_TMP/bogus"
	out=$("$SBX" create --kernel "$T_TMP/bogus" 2>&1)
	expect_eq status $? 125 && [[ $out == *"did not start"* ]] || fail "message: $out" || return 1
	expect_eq "nothing left" "$(ls "$SBX_STATE_DIR"; pgrep -af "$SBX_STATE_DIR")" ""
}

test_no_config() {
	local out rc t0
	# An initrd whose image archive replaces etc/sbx/config (the launcher's,
	# unpacked first) with a link to nothing: the guest boots with no
	# configuration, as when the kernel cannot unpack the config archive
	# ("Initramfs unpacking failed") and boots on. Its agent must not serve
	# (no token, none of the settings): it names the missing file on the
	# console and powers off, and create says so at once, not after its
	# boot timeout.
	{ lz4 -dc "$BUILD/initramfs.cpio.lz4" &&
		echo "slink etc/sbx/config /nonexistent 0777 0 0" | "$BUILD/mkcpio"; } \
		>"$T_TMP/noconfig.cpio" || fail "cannot make the initrd" || return 1
	t0=$SECONDS
	out=$("$SBX" create --image minimal --boot-timeout 60 --initrd "$T_TMP/noconfig.cpio" 2>&1)
	rc=$?
	expect_eq status $rc 125 || fail "message: $out" || return 1
	[[ $out == *"did not start: QEMU exited"*"; the agent said: this VM has no configuration: /etc/sbx/config is missing"* ]] ||
		fail "message: $out" || return 1
	((SECONDS - t0 < 60)) || fail "took $((SECONDS - t0)) s: the boot timeout" || return 1
	expect_eq "nothing left" "$(ls "$SBX_STATE_DIR"; pgrep -af "$SBX_STATE_DIR")" ""
}

# The minimal image never leaves the initramfs: the server removes
# /etc/sbx/config after READY, before it reads a request (PID 1 keeps it
# open, init/pid1.c hide_config). The first command already finds neither
# the file nor the token anywhere it can read.
test_minimal_config_gone() {
	local id out
	id=$("$SBX" create --image minimal --cold --lifetime 5m) || return 1
	out=$("$SBX" exec -u root -i "$id" -- sh -c 'read t; test -e /etc/sbx/config && echo present
		grep -rlF "$t" /etc /run /tmp /dev/shm /root /proc/$$/fd/[3-9]* /proc/$$/fd/[1-9]?* 2>/dev/null
		echo fds $(ls /proc/self/fd); [ -n "$t" ] && echo searched' \
		<"$SBX_STATE_DIR/$id/token")
	"$SBX" kill "$id" >/dev/null
	expect_eq "what the first command finds (its fds: 0-2 and ls's)" "$out" $'fds 0 1 2 3\nsearched'
}

test_run() {
	local out
	out=$("$SBX" run --memory 768 -- sh -c 'grep MemTotal /proc/meminfo; exit 7')
	expect_eq status $? 7 && [[ $out == MemTotal* ]] || fail "output: $out" || return 1
	expect_eq "run leaves nothing" "$(ls "$SBX_STATE_DIR"; pgrep -af "$SBX_STATE_DIR")" ""
}

# sbx run --direct-stdout: the command's stdout over a connection of its
# own, every byte, then its status and stderr; the sandbox is gone after.
test_run_direct_stdout() {
	local sum want rc
	"$SBX" run --direct-stdout -t -- true 2>"$T_TMP/rd.err"
	expect_eq "with -t" $? 2 || return 1
	grep -q "does not go with --tty" "$T_TMP/rd.err" || fail "sbx said: $(cat "$T_TMP/rd.err")" ||
		return 1
	want=$(head -c 4194304 /dev/zero | tr "\0" x | sha256sum)
	sum=$("$SBX" run --direct-stdout --memory 768 -- sh -c \
		'readlink /proc/$$/fd/1 | cut -d: -f1 >&2
		head -c 4194304 /dev/zero | tr "\0" x; echo to-stderr >&2; exit 5' \
		2>"$T_TMP/rd.err" | sha256sum; exit "${PIPESTATUS[0]}")
	rc=$?
	expect_eq status "$rc" 5 && expect_eq "sha256 of 4 MiB" "$sum" "$want" || return 1
	# fd 1 a socket, not the agent's pipe: the option reached the exec
	[[ $(cat "$T_TMP/rd.err") == *socket*to-stderr* ]] ||
		fail "fd 1 not a socket, or no stderr: $(cat "$T_TMP/rd.err")" || return 1
	expect_eq "run leaves nothing" "$(ls "$SBX_STATE_DIR"; pgrep -af "$SBX_STATE_DIR")" ""
}

# A machine without PCI (microvm): the kernel's "PCI: Fatal: No config
# space access function found" is noise, kept off the console.
test_quiet_console() {
	local log
	log=$("$SBX" logs "$ID") || return 1
	[[ $log != *"PCI: Fatal"* ]] || fail "console: $log"
}

# The guest decides how much it writes to its console: the log is rotated
# at SBX_CONSOLE_LOG_MAX (256 KiB here), two files at most (issue 18,
# item 5), and sbx logs shows both, the older first.
test_console_rotated() {
	local d=$SBX_STATE_DIR/$ID size old n
	"$SBX" exec -u root "$ID" -- sh -c 'i=0; while [ $i -lt 12 ]; do
		head -c 65536 /dev/zero | tr "\0" x >/dev/ttyS0; echo " block-$i" >/dev/ttyS0
		i=$((i + 1)); done' || return 1
	wait_for 30 grep -qs block-11 "$d/console.log" || fail "block-11 never came" || return 1
	size=$(stat -c %s "$d/console.log") old=$(stat -c %s "$d/console.log.1" 2>/dev/null)
	[ "$size" -le 262144 ] && [ "${old:-0}" -eq 262144 ] ||
		fail "console.log: $size bytes, console.log.1: ${old:-none}" || return 1
	"$SBX" logs "$ID" >"$T_TMP/console" || return 1
	grep -q block-11 "$T_TMP/console" || fail "sbx logs lacks the last block" || return 1
	n=$(wc -c <"$T_TMP/console")
	[ "$n" -ge $((size + old)) ] && [ "$n" -le $((2 * 262144)) ] ||
		fail "sbx logs printed $n bytes of $size + $old"
}

# One source (the guest's deadline) and one format for the time left.
test_time_left() {
	local ls info
	ls=$("$SBX" ls | awk -v id="$ID" '$1 == id { print $4 }')
	info=$("$SBX" info "$ID" | sed -n 's/^lifetime: *\([0-9hms]*\) left.*/\1/p')
	[[ $ls =~ ^[0-9]+m[0-9]{2}s$ ]] || fail "ls says '$ls'" || return 1
	[[ $info =~ ^[0-9]+m[0-9]{2}s$ ]] || fail "info says '$info'" || return 1
	secs() { local m=${1%%m*} s=${1#*m}; echo $((10#$m * 60 + 10#${s%s})); }
	local d=$(($(secs "$ls") - $(secs "$info")))
	[ ${d#-} -le 1 ] || fail "ls says $ls, info says $info"
}

t "create boots a sandbox and lists it" test_create || exit 0
t "the first command after ready finds lo up" test_first_exec_lo
t "echo over vsock" test_echo
t "the guest clock stays on the TSC" test_clock_tsc
t "the balloon is loaded after ready, reporting order 5" test_late_balloon
t "a command starts with no signal ignored or blocked" test_signals_default
t "it is a VM: guest kernel, hostname, sbx-init as PID 1" test_really_a_vm
t "the default image is Debian, commands run as app" test_default_debian
t "exit codes, signals, a missing program" test_exit_codes
t "16 MiB through stdin and back" test_stdin_16m
t "16 MiB of output leaves the guest in large vsock packets" test_output_packets
t "stderr kept apart" test_stderr_apart
t "--direct-stdout over vsock: 16 MiB exact, then status and stderr" test_direct_stdout
t "--direct-stdout: a client killed mid-stream, the command stopped, the agent serves" \
	test_direct_stdout_client_killed
t "--direct-stdout: SO_LINGER set on fd 1 leaves the agent serving" test_direct_stdout_linger
t "a PTY of the requested size" test_pty
t "20 concurrent execs" test_concurrent_20
t "environment from --env" test_env
t "--memory 1024 visible in /proc/meminfo" test_memory
t "info shows memory, labels and the agent" test_info
t "a guest-to-host connection is relayed" test_guest_to_host
t "the console of a healthy sandbox is quiet (no PCI noise)" test_quiet_console
t "ls and info say the same time left, the same way" test_time_left
t "the console log is rotated at its size, sbx logs shows both" test_console_rotated
t "kill leaves no process, socket or directory" test_kill
t "out-of-range memory is refused before anything starts" test_memory_refused
t "a bad kernel gives a clear error and leaves nothing" test_bad_kernel
t "a VM without its configuration powers off, create says why" test_no_config
t "run: create, command, destroy, its status" test_run
t "run --direct-stdout: every byte, then the status and stderr; not with -t" test_run_direct_stdout
t "minimal image: the first command finds no configuration file, no token, no fd past 2" test_minimal_config_gone
