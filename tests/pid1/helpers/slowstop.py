"""A process that needs DELAY seconds to shut down cleanly after SIGTERM.

    slowstop.py READY MARKER [--delay S]

On SIGTERM (caught, any number of times) it sleeps DELAY seconds, then writes
MARKER and exits 0.  READY is written once the handler is installed.
"""

from __future__ import annotations

import argparse
import os
import signal
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ready")
    parser.add_argument("marker")
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args()
    got: list[int] = []
    signal.signal(signal.SIGTERM, lambda n, f: got.append(n))
    with open(args.ready + ".tmp", "w") as f:
        f.write(f"{os.getpid()}\n")
    os.rename(args.ready + ".tmp", args.ready)
    while not got:
        time.sleep(0.01)
    time.sleep(args.delay)
    with open(args.marker + ".tmp", "w") as f:
        f.write("clean shutdown\n")
    os.rename(args.marker + ".tmp", args.marker)


if __name__ == "__main__":
    main()
