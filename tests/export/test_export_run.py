"""Real runs: the exported files started by the real process managers.

Each test exports a Procfile whose processes are `dumpenv.py` (it records its
argv, cwd and environment, then waits), with the hostile .env plus a unique
`CORRAL_EXPORT_MARK`; checks every value arrived byte for byte and `$PORT` and
the .env values were expanded in the command; stops everything the way an
operator would; and checks no process carrying the mark is left.

* supervisord (PyPI) on a unix socket in a temporary directory;
* runit's runsv/sv/chpst/svlogd (unpacked by .ci/setup-export.sh);
* systemd: a `systemd --user` manager inside a private mount namespace
  (`unshare --mount`) with a tmpfs on /run holding the `/run/systemd/system`
  marker it insists on, so nothing changes on the machine itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.export import ExportContext, render, write
from corral.specs import Policy
from tests.export.hostile import EXTRA, HOSTILE, context, lifecycle_context
from tests.export.tools import (
    DUMPENV,
    RUNIT_BIN,
    marked_pids,
    run,
    runit_tool,
    system_tool,
    venv_tool,
    wait_for,
)

EXPECTED = {k: v for k, v in {**HOSTILE, **EXTRA}.items() if k != "PORT"}
INSTANCES = {"web.1": "5000", "web.2": "5001", "worker.1": "5100"}
WEB_ARGS = ["bar baz  qux", "100% a%(here)s", "x ;y", HOSTILE["NEWLINES"], "$HOME a\\b"]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short directory (unix socket paths are limited to ~107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="corral-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mark() -> Iterator[str]:
    value = uuid.uuid4().hex
    yield value
    for pid in marked_pids(value):  # never leave anything behind, even on failure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def procfile(out: Path, child: bool, extra: str = "") -> str:
    dump = f"{shlex.quote(sys.executable)} {shlex.quote(str(DUMPENV))} {shlex.quote(str(out))}"
    flag = " --child" if child else ""
    return (
        f'web: {dump}{flag} "$PORT" "$SPACES" \'100% a%(here)s\' "x ;y" "$NEWLINES" '
        "'$HOME a\\b' # note\n"
        f'worker: {dump}{flag} "$PORT" "$BOTH"\n' + extra
    )


def run_context(root: Path, mark: str, child: bool, extra: str = "", **kw: object) -> ExportContext:
    out = root / "out"
    out.mkdir()
    counts = kw.pop("counts", {"web": 2, "worker": 1})
    return context(
        env={**HOSTILE, **EXTRA, "CORRAL_EXPORT_MARK": mark},
        procfile=procfile(out, child, extra),
        counts=counts,
        app_root=root,
        log_dir=str(root / "log"),
        user=pwd.getpwuid(os.getuid()).pw_name,
        timeout=3.0,
        **kw,
    )


def records(root: Path) -> dict[str, dict[str, object]]:
    out = root / "out"
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def check_records(root: Path) -> None:
    found = records(root)
    assert set(found) == set(INSTANCES)
    for name, port in INSTANCES.items():
        record = found[name]
        env = record["env"]
        assert isinstance(env, dict)
        for key, value in EXPECTED.items():
            assert env.get(key) == value, f"{name}: {key}: {env.get(key)!r} != {value!r}"
        assert env["PORT"] == port
        assert env["PS"] == env["HONCHO_PROCESS_NAME"] == name
        assert record["cwd"] == str(root)
        args = record["argv"]
        expected_args = [port, *WEB_ARGS] if name.startswith("web") else [port, HOSTILE["BOTH"]]
        assert args == expected_args, name


def all_started(root: Path, proc: subprocess.Popen[bytes], logs: list[Path]) -> bool:
    if proc.poll() is not None:
        text = "\n".join(p.read_text(errors="replace") for p in logs if p.exists())
        raise AssertionError(f"the manager exited with {proc.returncode}:\n{text}")
    return len(list((root / "out").glob("*.json"))) == len(INSTANCES)


# -- supervisord -------------------------------------------------------------------


def test_supervisord_real_run(short_tmp: Path, mark: str) -> None:
    supervisord, supervisorctl = venv_tool("supervisord"), venv_tool("supervisorctl")
    root = short_tmp
    (root / "log").mkdir()
    # a one-shot that exits 0 at once: startsecs=0 makes that a success (EXITED),
    # not a failed start that supervisord would retry (BACKOFF, then FATAL)
    ctx = run_context(
        root,
        mark,
        child=True,
        extra="once: echo ran >>once.log\n",
        policies={"once": Policy(oneshot=True)},
        counts={"web": 2, "worker": 1, "once": 1},
    )
    write(render("supervisord", ctx), root / "export")
    master = root / "supervisord.conf"
    master.write_text(
        "[supervisord]\n"
        "nodaemon=true\n"
        f"logfile={root}/supervisord.log\n"
        f"pidfile={root}/supervisord.pid\n"
        f"childlogdir={root}\n"
        "[unix_http_server]\n"
        f"file={root}/s.sock\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        "[supervisorctl]\n"
        f"serverurl=unix://{root}/s.sock\n"
        "[include]\n"
        f"files={root}/export/my_app.conf\n"
    )
    log = root / "supervisord.out"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [supervisord, "-c", str(master)], stdout=handle, stderr=subprocess.STDOUT
        )
    ctl = [supervisorctl, "-c", str(master)]
    try:
        wait_for(lambda: all_started(root, proc, [log]), what="3 processes")
        check_records(root)

        def running() -> bool:
            status = run([*ctl, "status"])
            # 3: some program is not running (the one-shot, once it exited)
            return status.returncode in (0, 3) and status.stdout.count("RUNNING") == 3

        wait_for(running, what="all RUNNING")
        status = run([*ctl, "status"]).stdout
        for program in ("my_app:my_app-web-1", "my_app:my_app-web-2", "my_app:my_app-worker-1"):
            assert program in status
        # 3 apps + 3 grandchildren carry the mark
        assert len(marked_pids(mark)) == 6
        assert "dumpenv web.1 ready" in (root / "log/web-1.log").read_text()

        def once() -> str:
            lines = [line for line in run([*ctl, "status"]).stdout.splitlines() if "once" in line]
            assert len(lines) == 1, lines
            return lines[0]

        # a start that does not count (exit before startsecs) would show
        # BACKOFF, then FATAL, never EXITED
        finished = (" EXITED ", " BACKOFF ", " FATAL ")
        wait_for(lambda: any(s in once() for s in finished), what="the one-shot to finish")
        # asked again: supervisord has run its state transitions since the
        # EXITED it reported, so a restart would show as STARTING by now
        state = once()
        assert " EXITED " in state, state

        result = run([*ctl, "shutdown"])
        assert result.returncode == 0, result.stdout + result.stderr
        proc.wait(timeout=20)
        wait_for(lambda: not marked_pids(mark), timeout=5, what="no leftover process")
        # all over: the one-shot ran exactly once
        assert _read(root / "once.log") == "ran\n"
        spawned = _read(root / "supervisord.log").count("spawned: 'my_app-once-1'")
        assert spawned == 1, _read(root / "supervisord.log")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- runit -------------------------------------------------------------------------

# relative to the app root, the processes' working directory; `group` is a
# compound command (not exec'd): control/t must stop the shell's children too
RUNIT_EXTRA = (
    "clean: sh -c 'echo ran >> \"$0\"; exit 0' clean.log\n"
    "crash: sh -c 'echo ran >> \"$0\"; exit 3' crash.log\n"
    "group: sleep 301 & sleep 302; echo never\n"
)


def test_runit_real_run(short_tmp: Path, mark: str) -> None:
    runsv, sv = runit_tool("runsv"), runit_tool("sv")
    runit_tool("chpst")
    root = short_tmp
    ctx = run_context(root, mark, child=True, extra=RUNIT_EXTRA)
    services = root / "service"
    write(render("runit", ctx), services)
    names = sorted(p.name for p in services.iterdir())
    assert names == [
        "my_app-clean-1",
        "my_app-crash-1",
        "my_app-group-1",
        "my_app-web-1",
        "my_app-web-2",
        "my_app-worker-1",
    ]
    env = {**os.environ, "PATH": f"{RUNIT_BIN}{os.pathsep}{os.environ['PATH']}"}
    procs = [
        subprocess.Popen([runsv, str(services / n)], env=env, stderr=subprocess.DEVNULL)
        for n in names
    ]
    try:
        wait_for(lambda: len(records(root)) == len(INSTANCES), what="3 processes")
        check_records(root)
        wait_for(
            lambda: "dumpenv web.1 ready" in _read(root / "log/web-1/current"),
            what="svlogd's log",
        )
        # on-failure: a clean exit stays down, a crash is restarted (runsv waits 1 s)
        wait_for(lambda: _read(root / "crash.log").count("ran") >= 2, what="a restart")

        # clean's finish script ran `sv down`: down and wanted down (while
        # runsv waits to restart a service it says `want up`), so never rerun
        def clean_status() -> str:
            return run([sv, "status", str(services / "my_app-clean-1")], env=env).stdout

        wait_for(
            lambda: clean_status().startswith("down:") and "want up" not in clean_status(),
            what="the clean exit to stay down",
        )
        assert _read(root / "clean.log") == "ran\n"
        # 3 apps + 3 grandchildren + the group's shell and 2 sleeps carry the mark
        wait_for(lambda: len(marked_pids(mark)) == 9, timeout=5, what="every process")

        # control/t signals each process group: grandchildren and the
        # compound command's children stop too
        for name in names:
            run([sv, "-w", "10", "stop", str(services / name)], env=env)
        wait_for(lambda: not marked_pids(mark), timeout=10, what="no leftover process")
        for name in names:
            run([sv, "exit", str(services / name)], env=env)
        for p in procs:
            p.wait(timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


# -- systemd -----------------------------------------------------------------------

SYSTEMD_SCRIPT = r"""
set -eu
state=$1 units=$2
mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
export XDG_RUNTIME_DIR="$state/xdg"
mkdir -p "$XDG_RUNTIME_DIR/systemd/user"
cp "$units"/* "$XDG_RUNTIME_DIR/systemd/user/"
/lib/systemd/systemd --user >"$state/manager.log" 2>&1 &
manager=$!
for _ in $(seq 400); do
    case "$(systemctl --user is-system-running 2>/dev/null || true)" in
        running|degraded) break ;;
    esac
    sleep 0.05
done
systemctl --user start my_app.target
until [ -e "$state/stop" ]; do sleep 0.05; done
systemctl --user stop my_app.target
# `systemctl stop` returns once the target is down: its units stop after it
for _ in $(seq 200); do
    busy=$(systemctl --user list-units --no-legend --plain \
        --state=active,activating,deactivating 'my_app*' || true)
    [ -z "$busy" ] && break
    sleep 0.05
done
systemctl --user list-units --all --no-legend --plain 'my_app*' >"$state/units" || true
touch "$state/stopped"
kill "$manager"
wait "$manager" || true
"""


def test_systemd_real_run(short_tmp: Path, mark: str) -> None:
    unshare = system_tool("unshare")
    system_tool("systemctl")
    if not Path("/lib/systemd/systemd").exists():
        pytest.fail("/lib/systemd/systemd is missing: run .ci/setup-export.sh")
    root = short_tmp
    write(render("systemd", run_context(root, mark, child=True)), root / "units")
    state = root / "state"
    state.mkdir()
    log = state / "script.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [
                *(unshare, "--mount", "--propagation", "private"),
                *("bash", "-c", SYSTEMD_SCRIPT, "sd", str(state), str(root / "units")),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: all_started(root, proc, [log, state / "manager.log"]), what="3 units")
        check_records(root)
        wait_for(lambda: len(marked_pids(mark)) == 6, timeout=5, what="apps and grandchildren")
        (state / "stop").touch()
        wait_for(lambda: (state / "stopped").exists(), what="the target to stop")
        # PartOf= stopped every unit; KillMode=mixed took the grandchildren too
        assert not marked_pids(mark)
        units = (state / "units").read_text()
        assert "active" not in units.replace("inactive", ""), units
        proc.wait(timeout=20)
        assert proc.returncode == 0, log.read_text()
    finally:
        (state / "stop").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- lifecycle under systemd: one-shot, Requires=/After=, readiness, stop signal --

SYSTEMD_LIFECYCLE_PROCFILE = """\
release: sleep 0.3 && echo release >>order.log
web: sh -c 'echo web-start >>order.log; sleep 0.5; echo web-ready >>order.log; touch web.ready; exec sleep 300'
worker: sh -c 'trap "echo worker-$0 >>order.log; exit 0" INT; echo worker-start >>order.log; while :; do sleep 0.05; done' INT
"""  # noqa: E501
SYSTEMD_LIFECYCLE_TOML = """\
[processes.web]
ready = { probe = "file:web.ready", interval = 0.1, timeout = 20 }

[processes.worker]
after = ["web"]
stop_signal = "INT"
"""


def test_systemd_lifecycle_real_run(short_tmp: Path, mark: str) -> None:
    """The release (Type=oneshot) completes before web starts; worker starts
    only once web's ExecStartPost= probe saw web.ready; the worker's stop
    signal is SIGINT."""
    unshare = system_tool("unshare")
    system_tool("systemctl")
    if not Path("/lib/systemd/systemd").exists():
        pytest.fail("/lib/systemd/systemd is missing: run .ci/setup-export.sh")
    root = short_tmp
    ctx = lifecycle_context(
        env={"CORRAL_EXPORT_MARK": mark},
        toml=SYSTEMD_LIFECYCLE_TOML,
        procfile=SYSTEMD_LIFECYCLE_PROCFILE,
        counts={},
        app_root=root,
        log_dir=str(root / "log"),
        user=pwd.getpwuid(os.getuid()).pw_name,
        timeout=3.0,
    )
    write(render("systemd", ctx), root / "units")
    state = root / "state"
    state.mkdir()
    log = state / "script.log"
    order = root / "order.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [
                *(unshare, "--mount", "--propagation", "private"),
                *("bash", "-c", SYSTEMD_SCRIPT, "sd", str(state), str(root / "units")),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "worker-start" in _read(order), what="the worker to start")
        assert _read(order).split() == ["release", "web-start", "web-ready", "worker-start"]
        (state / "stop").touch()
        wait_for(lambda: (state / "stopped").exists(), what="the target to stop")
        # `systemctl stop` returns once the target is stopped, before its units
        wait_for(lambda: "worker-INT" in _read(order), timeout=5, what="the worker's SIGINT")
        assert _read(order).split()[-1] == "worker-INT"
        wait_for(lambda: not marked_pids(mark), timeout=5, what="no leftover process")
        proc.wait(timeout=20)
        assert proc.returncode == 0, log.read_text()
    finally:
        (state / "stop").touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
