"""Options from the environment (Dockerfile `ENV`) and `.env`.

Precedence: command line > `.env` > OS environment > default.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.helpers import run_in_pty
from tests.support import TIME, run_corral

# -- CORRAL_TIMEOUT -----------------------------------------------------------


# `stub` survives SIGTERM (only its `sleep` dies of it) and logs it to stub.log
# at once (a trapped signal interrupts `wait`; a foreground `sleep` started
# just after the signal would delay the trap until it ends);
# `quick` exits 7 once stub's trap is in place.
def stubborn(on_term: str = "echo TERM >> stub.log") -> str:
    return (
        f"stub: trap '{on_term}' TERM; : > stub.ready; while :; do sleep 30 & wait; done\n"
        "quick: until [ -e stub.ready ]; do sleep 0.02; done; exit 7\n"
    )


STUBBORN = stubborn()


def grace_of(live, d, *args, env=None) -> float:
    """Seconds between `sending SIGTERM to stub.1` and `sending SIGKILL to stub.1`
    (an upper bound on the grace: lines can only arrive late).  The stub must
    have logged its SIGTERM: it was not SIGKILLed at once."""
    for name in ("stub.ready", "stub.log"):
        (d / name).unlink(missing_ok=True)
    proc = live("start", *args, cwd=d, env=env)
    term = proc.wait_line("sending SIGTERM to stub.1", timeout=10)
    kill = proc.wait_line("sending SIGKILL to stub.1", timeout=8)
    r = proc.finish(timeout=5)
    assert r.rc == 7, r
    assert (d / "stub.log").read_text() == "TERM\n", r.out
    return kill - term


def test_corral_timeout_from_os_environment(live, app_dir):
    d = app_dir(Procfile=STUBBORN)
    assert grace_of(live, d, env={"CORRAL_TIMEOUT": "1"}) < 3


def test_corral_timeout_dotenv_beats_os(live, app_dir):
    d = app_dir(Procfile=STUBBORN, **{".env": "CORRAL_TIMEOUT=1\n"})
    assert grace_of(live, d, env={"CORRAL_TIMEOUT": "30"}) < 3


def test_timeout_option_beats_dotenv_and_os(live, app_dir):
    d = app_dir(Procfile=STUBBORN, **{".env": "CORRAL_TIMEOUT=30\n"})
    assert grace_of(live, d, "-t", "1", env={"CORRAL_TIMEOUT": "30"}) < 3
    assert grace_of(live, d, "--timeout", "1", env={"CORRAL_TIMEOUT": "30"}) < 3


def test_default_timeout_is_five_seconds(live, app_dir):
    # the stub's own clock proves the wait was long: 3 s after its SIGTERM it
    # was still alive to log it (SIGKILL only after that); the upper bound
    # on the line times says it was not much longer than 5 s
    d = app_dir(Procfile=stubborn("echo TERM >> stub.log; sleep 3; echo 3s later >> stub.log"))
    proc = live("start", cwd=d)
    term = proc.wait_line("sending SIGTERM to stub.1", timeout=10)
    kill = proc.wait_line("sending SIGKILL to stub.1", timeout=10)
    assert kill - term < 7.5
    assert proc.finish(timeout=5).rc == 7
    assert (d / "stub.log").read_text() == "TERM\n3s later\n"


# -- CORRAL_CONCURRENCY -------------------------------------------------------

TWO = "web: echo w $PS; sleep 0.3\nworker: echo k $PS; sleep 0.3\n"


def instances(r) -> list[str]:
    assert r.rc == 0, r
    return sorted(re.findall(r"^(\S+) started \(pid=\d+\)$", r.out, re.M))


def test_concurrency_from_os_environment(app_dir):
    d = app_dir(Procfile=TWO)
    r = run_corral("start", "--no-prefix", env={"CORRAL_CONCURRENCY": "web=2,worker=0"}, cwd=d)
    assert instances(r) == ["web.1", "web.2"]


def test_concurrency_dotenv_beats_os(app_dir):
    d = app_dir(Procfile=TWO, **{".env": "CORRAL_CONCURRENCY=web=0,worker=2\n"})
    r = run_corral("start", "--no-prefix", env={"CORRAL_CONCURRENCY": "web=2,worker=0"}, cwd=d)
    assert instances(r) == ["worker.1", "worker.2"]


def test_concurrency_option_beats_dotenv_and_os(app_dir):
    d = app_dir(Procfile=TWO, **{".env": "CORRAL_CONCURRENCY=web=0,worker=2\n"})
    r = run_corral(
        "start", "--no-prefix", "-c", "web=3,worker=0",
        env={"CORRAL_CONCURRENCY": "web=2,worker=0"}, cwd=d,
    )  # fmt: skip
    assert instances(r) == ["web.1", "web.2", "web.3"]


def test_bad_concurrency_from_environment_is_an_error(app_dir):
    d = app_dir(Procfile=TWO)
    r = run_corral("start", env={"CORRAL_CONCURRENCY": "web"}, cwd=d)
    assert r.rc != 0 and r.err.startswith("corral: error: ") and "Traceback" not in r.err, r


# -- output settings ----------------------------------------------------------

ORDERED = (
    "web: echo web says; : > w.done; sleep 30\n"
    "worker: while [ ! -e w.done ]; do sleep 0.02; done; echo worker says\n"
)


def test_corral_quiet(app_dir):
    d = app_dir(Procfile=ORDERED)
    r = run_corral("start", "-t", "1", "--no-timestamp", env={"CORRAL_QUIET": "web"}, cwd=d)
    assert r.rc == 0, r
    assert "web says" not in r.out and "worker.1 | worker says" in r.lines, r.out
    assert "system   | web.1 stopped (rc=143)" in r.lines


def test_corral_quiet_option_beats_environment(app_dir):
    d = app_dir(Procfile=ORDERED)
    r = run_corral(
        "start", "-t", "1", "--no-timestamp", "-q", "worker",
        env={"CORRAL_QUIET": "web"}, cwd=d,
    )  # fmt: skip
    assert "web.1    | web says" in r.lines and "worker says" not in r.out, r.out


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "TRUE"])
def test_corral_no_timestamp(app_dir, value):
    d = app_dir(Procfile="web: echo hi\n")
    r = run_corral("start", env={"CORRAL_NO_TIMESTAMP": value}, cwd=d)
    assert r.rc == 0, r
    assert "web.1  | hi" in r.lines and not re.search(TIME, r.out), r.out


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_corral_no_timestamp_false_values(app_dir, value):
    d = app_dir(Procfile="web: echo hi\n")
    r = run_corral("start", env={"CORRAL_NO_TIMESTAMP": value}, cwd=d)
    assert r.rc == 0, r
    assert any(re.fullmatch(TIME + r" web\.1  \| hi", x) for x in r.lines), r.out


def test_corral_no_timestamp_dotenv_beats_os(app_dir):
    d = app_dir(Procfile="web: echo hi\n", **{".env": "CORRAL_NO_TIMESTAMP=0\n"})
    r = run_corral("start", env={"CORRAL_NO_TIMESTAMP": "1"}, cwd=d)
    assert any(re.fullmatch(TIME + r" web\.1  \| hi", x) for x in r.lines), r.out
    r = run_corral("start", "--no-timestamp", cwd=d)
    assert "web.1  | hi" in r.lines, r.out


def test_corral_no_prefix(app_dir):
    d = app_dir(Procfile="web: echo hi\n")
    r = run_corral("start", env={"CORRAL_NO_PREFIX": "1"}, cwd=d)
    assert r.rc == 0, r
    assert "hi" in r.lines and r.lines[-1] == "web.1 stopped (rc=0)", r.out
    d2 = app_dir(**{".env": "CORRAL_NO_PREFIX=yes\n"})
    assert "hi" in run_corral("start", cwd=d2).lines


def test_corral_processes(app_dir):
    d = app_dir(Procfile="web: echo w\nworker: echo k\nclock: echo c\n")
    r = run_corral("start", "--no-prefix", env={"CORRAL_PROCESSES": "worker,clock"}, cwd=d)
    assert instances(r) == ["clock.1", "worker.1"]
    r = run_corral("start", "--no-prefix", "web", env={"CORRAL_PROCESSES": "worker"}, cwd=d)
    assert instances(r) == ["web.1"]


def test_corral_app_root(app_dir, tmp_path):
    d = app_dir(**{"app/Procfile": 'web: pwd; echo "V=$V"\n', "app/.env": "V=app\n"})
    r = run_corral("start", "--no-prefix", env={"CORRAL_APP_ROOT": str(d / "app")}, cwd=tmp_path)
    assert r.rc == 0, r
    assert str((d / "app").resolve()) in r.lines and "V=app" in r.lines, r.out
    d2 = app_dir(**{"other/Procfile": "web: echo other\n"})
    r = run_corral("start", "--no-prefix", "-d", str(d2 / "other"),
                   env={"CORRAL_APP_ROOT": str(d / "app")}, cwd=tmp_path)  # fmt: skip
    assert "other" in r.lines, r.out


def test_corral_env(app_dir):
    d = app_dir(Procfile='web: echo "V=$V"\n', **{".env": "V=dot\n", "x.env": "V=x\n"})
    assert "V=x" in run_corral("start", "--no-prefix", env={"CORRAL_ENV": "x.env"}, cwd=d).lines
    r = run_corral("start", "--no-prefix", "-e", ".env", env={"CORRAL_ENV": "x.env"}, cwd=d)
    assert "V=dot" in r.lines, r.out


def test_corral_log_format_json(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    for args, env in ((("--log-format", "json"), None), ((), {"CORRAL_LOG_FORMAT": "json"})):
        r = run_corral("start", *args, env=env, cwd=d)
        assert r.rc == 0, r
        records = [json.loads(x) for x in r.lines]
        assert any(
            rec.get("process") == "web.1" and rec.get("line") == "hello" for rec in records
        ), records
        assert any("web.1 stopped (rc=0)" in json.dumps(rec) for rec in records), records


def test_corral_log_format_text_is_default(app_dir):
    d = app_dir(Procfile="web: echo hello\n", **{".env": "CORRAL_LOG_FORMAT=text\n"})
    r = run_corral("start", "--no-timestamp", env={"CORRAL_LOG_FORMAT": "json"}, cwd=d)
    assert "web.1  | hello" in r.lines, r.out


def test_corral_colour(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", env={"CORRAL_COLOUR": "always"}, cwd=d)
    assert "\x1b[0m\x1b[36m" in r.out, r.out
    r = run_in_pty("start", env={"CORRAL_COLOUR": "never"}, cwd=d)
    assert r.rc == 0 and "hello" in r.out and "\x1b" not in r.out, r
    r = run_in_pty("start", "--colour", "always", env={"CORRAL_COLOUR": "never"}, cwd=d)
    assert "\x1b[0m\x1b[36m" in r.out, r.out
