# Starting and stopping a development-mode agent for integration tests.
# Sourced after tests/lib.sh.

# start_agent MODE [ARGS...]: MODE is "dev" (an ordinary subreaper) or
# "pid1" (PID 1 of new user+pid+mount namespaces, as in a VM). Sets
# INIT_PID (sbx-init's PID 1 process, as the host sees it), AGENT_JOB
# (the background job: sbx-init or unshare), AGENT_SOCK, AGENT_LOG and
# SBX_CONNECT.
start_agent() {
	local mode=$1
	shift
	AGENT_SOCK=$T_TMP/agent-$mode-$RANDOM.sock
	AGENT_LOG=$AGENT_SOCK.log
	case $mode in
	dev)
		"$SBX_INIT" --listen "unix:$AGENT_SOCK" "$@" >>"$AGENT_LOG" 2>&1 &
		AGENT_JOB=$!
		INIT_PID=$AGENT_JOB
		;;
	pid1)
		unshare --user --map-root-user --pid --fork --mount --mount-proc \
			"$SBX_INIT" --listen "unix:$AGENT_SOCK" "$@" >>"$AGENT_LOG" 2>&1 &
		AGENT_JOB=$!
		wait_for 5 has_children $AGENT_JOB || return 1
		INIT_PID=$(children_of $AGENT_JOB)
		;;
	esac
	on_exit "stop_agent $INIT_PID $AGENT_JOB"
	export SBX_CONNECT=unix:$AGENT_SOCK
	wait_for 10 test -S "$AGENT_SOCK"
}

has_children() { test -n "$(children_of "$1")"; }
is_gone() { ! kill -0 "$1" 2>/dev/null; }

stop_agent() { # INIT_PID JOB
	kill -TERM "$1" 2>/dev/null
	wait_for 10 is_gone "$1" || kill -KILL "$1"
	wait "$2" 2>/dev/null
	return 0
}

# The server process of the agent whose PID 1 is INIT_PID.
server_pid() { pgrep -P "$INIT_PID" -f -- '--server' | head -1; }
