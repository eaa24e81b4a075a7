"""Helpers for the lifecycle black-box tests: the signal-reporting child
script, Procfile snippets, free ports.

The shared helpers (live corral runs, leftovers, output lines, one-line
errors) are in tests/support.py.
"""

from __future__ import annotations

import random
import socket

# A child that reports the signals it gets.  Usage:
#   python3 child.py NAME [exit|ignore] [LINGER] [CODE]
# It installs handlers, writes NAME.ready, then idles.  On a signal it appends
# `NAME SIGNAME <time>` to events.log and writes the name to NAME.sig; in
# `exit` mode it then lingers LINGER seconds, logs `NAME exit <time>` and exits
# CODE; in `ignore` mode it carries on.
CHILD = r"""
import os, signal, sys, time
name = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "exit"
linger = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
code = int(sys.argv[4]) if len(sys.argv) > 4 else 0
exiting = False

def log(text):
    fd = os.open("events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{name} {text} {time.time():.6f}\n".encode())
    os.close(fd)

def handler(signum, frame):
    global exiting
    signame = signal.Signals(signum).name
    log(signame)
    with open(name + ".sig", "a") as f:
        f.write(signame + "\n")
    if mode == "exit" and not exiting:
        exiting = True
        time.sleep(linger)
        log("exit")
        os._exit(code)

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
          signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, handler)
open(name + ".ready", "w").close()
print(f"{name} ready", flush=True)
while True:
    time.sleep(0.05)
"""


# `wait_files a b ...`: a Procfile snippet that waits (bounded, 10 s) for files.
def wait_files(*names: str) -> str:
    cond = " && ".join(f"[ -e {n} ]" for n in names)
    return f"i=0; until {cond}; do i=$((i+1)); [ $i -gt 500 ] && exit 99; sleep 0.02; done"


# -- ports --------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(types: int = 3) -> int:
    """A base port such that base + 100*i (i < types) are all free now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        if all(_port_free(base + 100 * i) for i in range(types)):
            return base
    raise AssertionError("no free ports found")
