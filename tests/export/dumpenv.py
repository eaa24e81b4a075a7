"""The process the real-run export tests start through each process manager.

`dumpenv.py OUT_DIR [--child] ARGS...` writes `OUT_DIR/<$PS>.json` (pid, argv,
cwd, environment), prints a line, then waits for SIGTERM.  With `--child` it
first starts a `sleep` grandchild, which only a group-wide stop cleans up.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys


def main() -> None:
    out_dir, args = sys.argv[1], sys.argv[2:]
    if args[:1] == ["--child"]:
        args = args[1:]
        subprocess.Popen(["sleep", "300"])
    name = os.environ.get("PS", "unnamed")
    record = {"pid": os.getpid(), "argv": args, "cwd": os.getcwd(), "env": dict(os.environ)}
    path = os.path.join(out_dir, f"{name}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    os.replace(path + ".tmp", path)
    print(f"dumpenv {name} ready", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
