"""Make COUNT orphans: fork a child that forks a grandchild and exits at once.

    orphaner.py LOG DONE --count N [--interval S]

Each grandchild waits until it has been re-parented (its parent exited), then
appends `<its pid> <new parent pid>` to LOG, lives for 0-30 ms and exits: a
short-lived orphan that whoever adopted it has to reap.  The orphaner reaps
its own direct children at once (so they never linger as zombies), writes
DONE after the last one and then sleeps forever (it must not exit: under
corral's first-exit policy that would stop the app).
"""

from __future__ import annotations

import argparse
import os
import random
import time


def grandchild(log: str, parent: int) -> None:
    deadline = time.monotonic() + 10
    while os.getppid() == parent and time.monotonic() < deadline:
        time.sleep(0.001)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, f"{os.getpid()} {os.getppid()}\n".encode())
    os.close(fd)
    time.sleep(random.uniform(0, 0.03))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("done")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.01)
    args = parser.parse_args()
    for _ in range(args.count):
        child = os.fork()
        if child == 0:
            try:
                me = os.getpid()
                if os.fork() == 0:
                    try:
                        grandchild(args.log, me)
                    finally:
                        os._exit(0)
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        time.sleep(args.interval)
    with open(args.done, "w") as f:
        f.write("done\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
