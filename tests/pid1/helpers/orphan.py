"""Leave one orphan behind that exits later with a given code, then return.

    orphan.py INFO --delay S --code N

The orphan (a double-forked grandchild, in a new session so no group signal
reaches it) waits until it is re-parented, writes `<pid> <new ppid>` to INFO,
sleeps DELAY seconds and exits with CODE.  orphan.py itself exits 0 as soon
as the intermediate child is gone.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("info")
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--code", type=int, default=7)
    args = parser.parse_args()
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            me = os.getpid()
            if os.fork() == 0:
                deadline = time.monotonic() + 10
                while os.getppid() == me and time.monotonic() < deadline:
                    time.sleep(0.001)
                with open(args.info + ".tmp", "w") as f:
                    f.write(f"{os.getpid()} {os.getppid()}\n")
                os.rename(args.info + ".tmp", args.info)
                time.sleep(args.delay)
                os._exit(args.code)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


if __name__ == "__main__":
    main()
