"""Record every signal received: one line `<signum>` appended to LOG per signal.

    catcher.py LOG [--ready FILE] [--exit-on SIG=CODE ...] [--ignore SIG ...]

Handlers are installed for HUP INT QUIT USR1 USR2 WINCH TERM ALRM (minus any
--ignore'd one, which is set to SIG_IGN); READY is written once they are in
place.  `--exit-on TERM=0` makes the process exit with that code after
recording the signal; otherwise it keeps running (so a caught TERM does *not*
stop it: it behaves like a process that ignores TERM but tells us it saw it).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

WATCHED = ("HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "TERM", "ALRM")


def signum(text: str) -> int:
    text = text.upper()
    if text.isdigit():
        return int(text)
    return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--ready")
    parser.add_argument("--exit-on", action="append", default=[])
    parser.add_argument("--ignore", action="append", default=[])
    args = parser.parse_args()

    exit_on = {}
    for item in args.exit_on:
        name, _, code = item.partition("=")
        exit_on[signum(name)] = int(code or 0)
    ignored = {signum(s) for s in args.ignore}
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def handler(num: int, frame: object) -> None:
        os.write(fd, f"{num}\n".encode())
        if num in exit_on:
            os._exit(exit_on[num])

    for name in WATCHED:
        num = signum(name)
        signal.signal(num, signal.SIG_IGN if num in ignored else handler)
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(args.ready + ".tmp", args.ready)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
