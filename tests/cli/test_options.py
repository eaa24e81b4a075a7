"""The command line: global options before or after the subcommand, version, help."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.support import assert_no_traceback, base_env, run_corral

VERSION_RE = re.compile(r"corral \d+\.\d+\.\d+(\S*)?\n")


@pytest.mark.parametrize("args", [("-v",), ("--version",), ("version",)])
def test_version_forms(app_dir, args):
    r = run_corral(*args, cwd=app_dir())
    assert r.rc == 0, r
    assert VERSION_RE.fullmatch(r.out), r.out
    assert r.err == ""


def test_version_forms_agree_with_python_m_and_metadata(app_dir):
    from importlib.metadata import version

    d = app_dir()
    outs = {run_corral(a, cwd=d).out for a in ("-v", "--version", "version")}
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "version"],
        cwd=d,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc
    outs.add(proc.stdout)
    assert outs == {f"corral {version('corral')}\n"}


def test_python_m_corral_starts(app_dir):
    d = app_dir(Procfile="web: echo via python -m\n")
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "start", "--no-timestamp"],
        cwd=d,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc
    assert "web.1  | via python -m" in proc.stdout.splitlines()


def test_help_lists_commands(app_dir):
    r = run_corral("help", cwd=app_dir())
    assert r.rc == 0, r
    for command in ("start", "run", "check", "version", "help"):
        assert re.search(rf"\b{command}\b", r.out), (command, r.out)
    assert "usage: corral" in r.out


def test_help_start_describes_start_options(app_dir):
    r = run_corral("help", "start", cwd=app_dir())
    assert r.rc == 0, r
    assert "usage: corral start" in r.out
    for option in ("--concurrency", "--port", "--quiet", "--timeout", "--no-timestamp"):
        assert option in r.out, (option, r.out)


def test_help_unknown_command_is_an_error(app_dir):
    r = run_corral("help", "nosuchcommand", cwd=app_dir())
    assert r.rc != 0
    assert_no_traceback(r)
    assert r.err.startswith("corral: error: ") and "nosuchcommand" in r.err, r.err


# -- global options, before and after the subcommand --------------------------


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_procfile_option(app_dir, before):
    d = app_dir(**{"Procfile": "web: echo default\n", "Other.proc": "web: echo other\n"})
    opts = ("-f", "Other.proc")
    args = (*opts, "start", "--no-prefix") if before else ("start", *opts, "--no-prefix")
    r = run_corral(*args, cwd=d)
    assert r.rc == 0, r
    assert "other" in r.lines and "default" not in r.lines, r.out
    long = (
        ("--procfile", "Other.proc", "start") if before else ("start", "--procfile", "Other.proc")
    )
    assert "other" in run_corral(*long, "--no-prefix", cwd=d).lines


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_env_option(app_dir, before):
    d = app_dir(Procfile='web: echo "V=$V"\n', **{".env": "V=dotenv\n", "other.env": "V=other\n"})
    args = ("-e", "other.env", "start") if before else ("start", "-e", "other.env")
    r = run_corral(*args, "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert "V=other" in r.lines, r.out
    args = ("--env", "other.env", "start") if before else ("start", "--env", "other.env")
    assert "V=other" in run_corral(*args, "--no-prefix", cwd=d).lines


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_app_root_option(app_dir, before):
    d = app_dir(**{"app/Procfile": 'web: echo "V=$V"; pwd\n', "app/.env": "V=inapp\n"})
    args = ("-d", "app", "start") if before else ("start", "-d", "app")
    r = run_corral(*args, "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert "V=inapp" in r.lines, r.out
    assert str((d / "app").resolve()) in r.lines, r.out
    args = ("--app-root", "app", "start") if before else ("start", "--app-root", "app")
    assert "V=inapp" in run_corral(*args, "--no-prefix", cwd=d).lines


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_no_prefix_option(app_dir, before):
    d = app_dir(Procfile="web: echo bare\n")
    args = ("--no-prefix", "start") if before else ("start", "--no-prefix")
    r = run_corral(*args, cwd=d)
    assert r.rc == 0, r
    assert "bare" in r.lines and not any(" | " in x for x in r.lines), r.out


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_global_options_with_check_and_run(app_dir, before):
    d = app_dir(**{"app/Other": "alpha: x\nbeta: y\n", "app/x.env": "V=fromx\n"})
    opts = ("-d", "app", "-f", "Other", "-e", "x.env")
    args = (*opts, "check") if before else ("check", *opts)
    r = run_corral(*args, cwd=d)
    assert r.rc == 0, r
    assert "Valid procfile detected (alpha, beta)" in r.err
    args = (*opts, "run", "printenv", "V") if before else ("run", *opts, "printenv", "V")
    r = run_corral(*args, cwd=d)
    assert r.rc == 0, r
    assert r.out == "fromx\n"


def test_all_global_options_after_start_together(app_dir):
    d = app_dir(**{"app/P": 'web: echo "V=$V"\n', "app/e.env": "V=e\n"})
    r = run_corral(
        "start", "-d", "app", "-f", "P", "-e", "e.env", "--no-colour", "--no-prefix",
        env={"FORCE_COLOR": "1"}, cwd=d,
    )  # fmt: skip
    assert r.rc == 0, r
    assert "V=e" in r.lines and "\x1b" not in r.out, r.out
