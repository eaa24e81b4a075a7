"""One-shot tasks and the release phase, with real processes."""

from __future__ import annotations

import pytest

from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    count,
    in_order,
    index,
    run_corral,
    system,
    texts,
    timed,
)

# -- migration, then web -------------------------------------------------------

# migrate takes a moment and leaves a mark; web checks the mark at once, then
# stays up a while after migrate has exited (migrate's exit 0 must not stop
# it) and exits 0 itself, which ends the run.
MIGRATE_WEB = (
    "migrate: echo migrating; sleep 0.4; touch migrated.flag; echo migration done\n"
    "web: if [ -e migrated.flag ]; then echo web sees the migration; "
    "else echo web started too early; fi; sleep 0.6; echo web still up\n"
)

SOURCES = {
    "cli": ({}, ("--oneshot", "migrate", "--after", "web:migrate"), {}),
    "toml": (
        {
            "corral.toml": "[processes.migrate]\noneshot = true\n\n"
            '[processes.web]\nafter = ["migrate"]\n'
        },
        (),
        {},
    ),
    "pyproject": (
        {
            "pyproject.toml": '[project]\nname = "app"\n\n'
            "[tool.corral.processes.migrate]\noneshot = true\n\n"
            '[tool.corral.processes.web]\nafter = ["migrate"]\n'
        },
        (),
        {},
    ),
    "env": ({}, (), {"CORRAL_ONESHOT": "migrate", "CORRAL_AFTER": "web:migrate"}),
    "dotenv": ({".env": "CORRAL_ONESHOT=migrate\nCORRAL_AFTER=web:migrate\n"}, (), {}),
}


@pytest.mark.parametrize("source", list(SOURCES))
def test_migration_then_web(app_dir, mark, source):
    files, args, env = SOURCES[source]
    d = app_dir(Procfile=MIGRATE_WEB, **files)
    r = run_corral("start", "-t", "1", *args, cwd=d, env=env, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "migrate.1 started (pid=",
        "web.1 waiting for migrate",
        "migrate.1 completed (rc=0)",
        "web.1 started (pid=",
        "web.1 stopped (rc=0)",
    )
    assert count(sys_lines, "web.1 started") == 1
    assert texts(r.out, "web.1") == ["web sees the migration", "web still up"]
    assert texts(r.out, "migrate.1") == ["migrating", "migration done"]
    # nobody told web to stop: it ended on its own, after migrate was long gone
    assert not any("sending" in line for line in sys_lines), sys_lines
    assert_nothing_left(mark)


def test_after_several_dependencies_plus_form(app_dir):
    """`--after web:migrate+seed`: web waits for both one-shots."""
    d = app_dir(
        Procfile="migrate: sleep 0.2; touch m.flag\n"
        "seed: sleep 0.5; touch s.flag\n"
        "web: [ -e m.flag ] && [ -e s.flag ] && echo both done\n"
    )
    r = run_corral(
        "start", "--oneshot", "migrate,seed", "--after", "web:migrate+seed", cwd=d, timeout=20
    )
    assert r.rc == 0, r
    sys_lines = system(r.out)
    assert "web.1 waiting for migrate, seed" in sys_lines, sys_lines
    in_order(sys_lines, "migrate.1 completed", "seed.1 completed", "web.1 started")
    assert texts(r.out, "web.1") == ["both done"]


# -- one-shots -----------------------------------------------------------------


def test_oneshot_failure_stops_the_group(app_dir, mark):
    d = app_dir(Procfile="task: sleep 0.3; exit 5\nweb: exec sleep 30\n")
    r, took = timed(lambda: run_corral("start", "-t", "1", "--oneshot", "task", cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 5, r
    sys_lines = system(r.out)
    in_order(sys_lines, "task.1 stopped (rc=5)", "sending SIGTERM to web.1", "web.1 stopped")
    assert "completed" not in r.out
    assert took < 5, took
    assert_nothing_left(mark)


def test_oneshot_failure_never_starts_its_dependents(app_dir):
    d = app_dir(Procfile="migrate: echo boom; exit 5\nweb: echo web ran\n")
    r = run_corral("start", "--oneshot", "migrate", "--after", "web:migrate", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 5, r
    assert "web.1 waiting for migrate" in system(r.out)
    assert "web.1 started" not in r.out
    assert texts(r.out, "web.1") == []


def test_all_oneshots_succeeding_exit_zero(app_dir):
    d = app_dir(Procfile="a: echo a done\nb: sleep 0.4; echo b done\nc: sleep 0.2; echo c done\n")
    r = run_corral("start", "--oneshot", "a,b", "--oneshot", "c", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    for name in ("a", "b", "c"):
        assert f"{name}.1 completed (rc=0)" in sys_lines, sys_lines
        assert texts(r.out, f"{name}.1") == [f"{name} done"]
    # a's early exit stopped nobody
    assert not any("sending" in line for line in sys_lines), sys_lines


def test_oneshot_retried_by_its_restart_policy(app_dir):
    d = app_dir(
        Procfile="migrate: if [ -e tried ]; then echo second try ok; exit 0; fi; "
        "touch tried; echo first try fails; exit 2\n"
        "web: echo web up\n",
        **{
            "corral.toml": "[processes.migrate]\noneshot = true\n"
            'restart = { policy = "on-failure", delay = 0.1 }\n'
            '[processes.web]\nafter = ["migrate"]\n'
        },
    )
    r = run_corral("start", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "migrate.1 exited (rc=2); restarting in 0.1s (attempt 1/5)",
        "migrate.1 completed (rc=0)",
        "web.1 started",
    )
    assert texts(r.out, "migrate.1") == ["first try fails", "second try ok"]
    assert texts(r.out, "web.1") == ["web up"]


# -- release phase ---------------------------------------------------------------

# release is the last entry, so it is not Procfile order that runs it first
RELEASE_OK = (
    "web: [ -e released ] && echo web after release; sleep 0.3\n"
    "worker: [ -e released ] && echo worker after release; exec sleep 30\n"
    "release: echo releasing; sleep 0.3; touch released; echo release done\n"
)


def test_release_runs_to_completion_first(app_dir, mark):
    d = app_dir(Procfile=RELEASE_OK)
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    done = index(sys_lines, "release.1 completed (rc=0)")
    assert index(sys_lines, "release.1 started") < done
    assert index(sys_lines, "web.1 started") > done, sys_lines
    assert index(sys_lines, "worker.1 started") > done, sys_lines
    assert index(sys_lines, "web.1 waiting for release") < done
    assert index(sys_lines, "worker.1 waiting for release") < done
    assert texts(r.out, "web.1") == ["web after release"]
    assert texts(r.out, "worker.1") == ["worker after release"]
    assert texts(r.out, "release.1") == ["releasing", "release done"]
    assert_nothing_left(mark)


def test_release_failure_exits_with_its_code_and_starts_nothing(app_dir):
    d = app_dir(
        Procfile="web: echo web ran; sleep 30\nrelease: echo release failing; exit 7\n"
        "worker: echo worker ran; sleep 30\n"
    )
    r, took = timed(lambda: run_corral("start", "-t", "1", cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 7, r
    assert "web.1 started" not in r.out, r.out
    assert "worker.1 started" not in r.out, r.out
    assert texts(r.out, "release.1") == ["release failing"]
    assert "release.1 stopped (rc=7)" in system(r.out)
    assert took < 5, took


RELEASE_OFF = {
    "option": (("--no-release",), {}, {}),
    "env": ((), {"CORRAL_RELEASE": "0"}, {}),
    "dotenv": ((), {}, {".env": "CORRAL_RELEASE=false\n"}),
    "toml": ((), {}, {"corral.toml": "[release]\nenabled = false\n"}),
}


@pytest.mark.parametrize("how", list(RELEASE_OFF))
def test_release_phase_can_be_turned_off(app_dir, mark, how):
    """Off, `release` is an ordinary process: web starts at once, and release's
    exit (not a one-shot any more) stops the group as in a plain Procfile."""
    args, env, files = RELEASE_OFF[how]
    d = app_dir(
        Procfile="release: sleep 0.5; echo release end\nweb: echo web up; exec sleep 30\n",
        **files,
    )
    r = run_corral("start", "-t", "1", *args, cwd=d, env=env, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    assert not any("waiting for" in line for line in sys_lines), sys_lines
    in_order(sys_lines, "web.1 started", "release.1 stopped (rc=0)", "sending SIGTERM to web.1")
    assert "completed" not in r.out
    assert texts(r.out, "web.1") == ["web up"]
    assert_nothing_left(mark)


RELEASE_TIMEOUT = {
    "option": (("--release-timeout", "1"), {}, {}),
    "env": ((), {"CORRAL_RELEASE_TIMEOUT": "1"}, {}),
    "toml": ((), {}, {"corral.toml": "[release]\ntimeout = 1\n"}),
}


@pytest.mark.parametrize("how", list(RELEASE_TIMEOUT))
def test_release_timeout(app_dir, mark, how):
    args, env, files = RELEASE_TIMEOUT[how]
    d = app_dir(Procfile="release: echo releasing; exec sleep 30\nweb: echo web ran\n", **files)
    r, took = timed(lambda: run_corral("start", "-t", "1", *args, cwd=d, env=env, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 124, r
    assert "release.1 still running after 1s; stopping" in system(r.out), r.out
    assert "web.1 started" not in r.out
    assert 0.9 <= took < 4, took
    assert_nothing_left(mark)


def test_release_after_its_database(app, mark):
    """The README's shape: the release needs db, so db starts first and is
    probed; the release runs once db is ready; web and worker wait for the
    release; on stop web and worker go before db."""
    d = app(
        Procfile="release: [ -e db.flag ] && echo migrating against db\n"
        "db: sleep 0.3; touch db.flag; exec python3 child.py db\n"
        "web: echo web up; sleep 0.3\n"
        "worker: exec python3 child.py worker\n",
        **{
            "corral.toml": '[processes.release]\nafter = ["db"]\n'
            '[processes.db]\nready = "cmd:test -e db.flag"\nstop_signal = "INT"\n'
            '[processes.web]\nafter = ["db"]\n'
            '[processes.worker]\nafter = ["db"]\nstop_signal = "INT"\n'
        },
    )
    r = run_corral("start", "-t", "2", "--ready-timeout", "5", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    assert "db.1 waiting for" not in r.out
    in_order(
        sys_lines,
        "db.1 started",
        "db.1 ready (cmd:test -e db.flag)",
        "release.1 started",
        "release.1 completed (rc=0)",
        "web.1 started",
        "web.1 stopped (rc=0)",
        "sending SIGINT to worker.1",
        "worker.1 stopped",
        "sending SIGINT to db.1",
    )
    assert index(sys_lines, "worker.1 started") > index(sys_lines, "release.1 completed")
    assert texts(r.out, "release.1") == ["migrating against db"]
    assert (d / "db.sig").read_text() == "SIGINT\n"
    assert_nothing_left(mark)


def test_oneshot_run_timeout(app_dir, mark):
    """A one-shot with `timeout` still running then stops everything (124)."""
    d = app_dir(
        Procfile="task: echo working; exec sleep 30\nweb: exec sleep 30\n",
        **{"corral.toml": "[processes.task]\noneshot = true\ntimeout = 0.5\n"},
    )
    r, took = timed(lambda: run_corral("start", "-t", "1", cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 124, r
    in_order(
        system(r.out), "task.1 still running after 0.5s; stopping", "sending SIGTERM to task.1"
    )
    assert "sending SIGTERM to web.1" in r.out
    assert took < 3, took
    assert_nothing_left(mark)
