"""`corral run [--] CMD` and `corral check`."""

from __future__ import annotations

import pytest

from tests.support import assert_one_error, run_corral


@pytest.mark.parametrize("dashdash", [True, False], ids=["with--", "without--"])
def test_run_gets_dotenv_environment(app_dir, dashdash):
    d = app_dir(**{".env": "GREETING='hello there'\nexport OTHER=x\n"})
    args = ("run", "--", "printenv", "GREETING") if dashdash else ("run", "printenv", "GREETING")
    r = run_corral(*args, cwd=d, env={"GREETING": "from-os"})
    assert r.rc == 0, r
    assert r.out == "hello there\n"
    assert r.err == ""


def test_run_sees_os_environment_too(app_dir):
    d = app_dir(**{".env": "A=dot\n"})
    r = run_corral("run", "sh", "-c", 'echo "$A $B"', cwd=d, env={"A": "os", "B": "os-b"})
    assert r.out == "dot os-b\n", r


def test_run_exit_code_and_streams_pass_through(app_dir):
    d = app_dir()
    r = run_corral("run", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3", cwd=d)
    assert r.rc == 3, r
    assert r.out == "to-out\n"
    assert r.err == "to-err\n"


@pytest.mark.parametrize("code", [0, 1, 42, 255])
def test_run_exit_codes(app_dir, code):
    r = run_corral("run", "sh", "-c", f"exit {code}", cwd=app_dir())
    assert r.rc == code, r


def test_run_killed_by_signal(app_dir):
    r = run_corral("run", "sh", "-c", "kill -9 $$", cwd=app_dir())
    assert r.rc == 137, r


def test_run_arguments_are_not_reinterpreted(app_dir):
    d = app_dir()
    r = run_corral("run", "echo", "$HOME", "a  b", "-f", "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert r.out == "$HOME a  b -f --no-prefix\n"


def test_run_passes_stdin(app_dir):
    r = run_corral("run", "--", "tr", "a-z", "A-Z", cwd=app_dir(), input="shout\n")
    assert r.out == "SHOUT\n", r


def test_run_with_app_root_and_env_files(app_dir):
    d = app_dir(**{"app/.env": "A=default\n", "app/b.env": "A=b\n"})
    assert run_corral("-d", "app", "run", "printenv", "A", cwd=d).out == "default\n"
    assert run_corral("run", "-d", "app", "-e", "b.env", "printenv", "A", cwd=d).out == "b\n"


def test_run_does_not_need_a_procfile(app_dir):
    r = run_corral("run", "true", cwd=app_dir())
    assert r.rc == 0, r


def test_run_unknown_command(app_dir):
    r = run_corral("run", "no-such-command-xyz", cwd=app_dir())
    assert r.rc == 127, r
    assert "no-such-command-xyz" in r.err and "Traceback" not in r.err


# -- check --------------------------------------------------------------------


def test_check_valid_procfile(app_dir):
    d = app_dir(Procfile="web: a\n# c\n\nworker: b\n", **{".env": "A=1\n"})
    r = run_corral("check", cwd=d)
    assert r.rc == 0, r
    assert r.err == "Valid procfile detected (web, worker)\n"
    assert r.out == ""


def test_check_lists_names_in_procfile_order(app_dir):
    d = app_dir(Procfile="zeta: a\nalpha: b\nmid-1: c\n")
    assert run_corral("check", cwd=d).err == "Valid procfile detected (zeta, alpha, mid-1)\n"


def test_check_bad_procfile(app_dir):
    d = app_dir(Procfile="web: a\nworker b\n")
    assert_one_error(run_corral("check", cwd=d), "Procfile:2: ")


def test_check_bad_dotenv(app_dir):
    d = app_dir(Procfile="web: a\n", **{".env": "GOOD=1\nthis is bad\n"})
    assert_one_error(run_corral("check", cwd=d), ".env:2: ")


def test_check_missing_procfile(app_dir):
    assert_one_error(run_corral("check", cwd=app_dir()), "Procfile")


def test_check_does_not_start_anything(app_dir):
    d = app_dir(Procfile="web: touch started\n")
    assert run_corral("check", cwd=d).rc == 0
    assert not (d / "started").exists()
