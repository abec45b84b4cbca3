#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal (its controlling terminal, as
in a shell), acts on it once it has had a second to start, and reports
how it ended and whether it left the terminal's settings as it found
them. Used by jobs.sh for `sbx attach` on a terminal.

usage: attach_pty.py OUT ACTION -- CMD [ARG...]
ACTION: type:TEXT (TEXT with Python escapes, written as typed keys) or
signal:NAME (sent to the command). Prints "rc=N restored=yes|no";
everything the command wrote to the terminal goes to OUT. rc=timeout
when it did not end within 10 s (it is then killed)."""
import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
import time


def main():
    out_path, action = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    master, slave = os.openpty()
    before = termios.tcgetattr(slave)

    def ctty():
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave,
                            start_new_session=True, preexec_fn=ctty)
    output = b""

    def drain(seconds):
        nonlocal output
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select([master], [], [], left)
            if not r:
                return
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            output += data

    drain(1.0)
    if action.startswith("type:"):
        keys = action[5:].encode().decode("unicode_escape").encode("latin-1")
        os.write(master, keys)
    elif action.startswith("signal:"):
        proc.send_signal(getattr(signal, "SIG" + action[7:]))
    rc = "timeout"
    end = time.monotonic() + 10
    while time.monotonic() < end:
        drain(0.1)
        if proc.poll() is not None:
            rc = str(proc.returncode)
            break
    if rc == "timeout":
        proc.kill()
        proc.wait()
    drain(0.2)
    after = termios.tcgetattr(slave)
    with open(out_path, "wb") as f:
        f.write(output)
    print("rc=%s restored=%s" % (rc, "yes" if after == before else "no"))


main()
