"""Settings sources, precedence and validation: one-line errors, cycles, check,
and a plain Procfile that keeps the plain behaviour."""

from __future__ import annotations

import pytest

from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    assert_one_error,
    count,
    in_order,
    run_corral,
    system,
    texts,
    timed,
)

PROCFILE = "web: exec sleep 30\nworker: exec sleep 30\nmigrate: true\n"


def toml(text: str) -> dict[str, str]:
    return {"corral.toml": text}


# (id, extra files, args, env, fragments the one error line must contain)
ERRORS = [
    ("restart-unknown-process", {}, ("--restart", "nosuch=always"), {}, ("'nosuch'",)),
    ("after-unknown-dependency", {}, ("--after", "web:nosuch"), {}, ("'nosuch'",)),
    ("after-unknown-process", {}, ("--after", "nosuch:web"), {}, ("'nosuch'",)),
    ("oneshot-unknown-process", {}, ("--oneshot", "nosuch"), {}, ("'nosuch'",)),
    ("ready-unknown-process", {}, ("--ready", "nosuch=tcp:1"), {}, ("'nosuch'",)),
    ("stop-signal-unknown-process", {}, ("--stop-signal", "nosuch=INT"), {}, ("'nosuch'",)),
    ("stop-timeout-unknown-process", {}, ("--stop-timeout", "nosuch=1"), {}, ("'nosuch'",)),
    ("toml-unknown-process", toml("[processes.nosuch]\noneshot = true\n"), (), {}, ("'nosuch'",)),
    (
        "toml-after-unknown",
        toml('[processes.web]\nafter = ["nosuch"]\n'),
        (),
        {},
        ("'nosuch'", "corral.toml"),
    ),
    ("env-restart-unknown-process", {}, (), {"CORRAL_RESTART": "nosuch=always"}, ("'nosuch'",)),
    ("policy-sometimes", {}, ("--restart", "worker=sometimes"), {}, ("'sometimes'",)),
    (
        "toml-policy-sometimes",
        toml('[processes.worker]\nrestart = "sometimes"\n'),
        (),
        {},
        ("'sometimes'", "corral.toml"),
    ),
    (
        "toml-table-policy-sometimes",
        toml('[processes.worker]\nrestart = { policy = "sometimes" }\n'),
        (),
        {},
        ("'sometimes'",),
    ),
    ("probe-bogus", {}, ("--ready", "web=bogus:x"), {}, ("'bogus:x'",)),
    ("probe-no-target", {}, ("--ready", "web=tcp:"), {}, ("tcp:",)),
    ("probe-bad-regex", {}, ("--ready", "web=log:(unclosed"), {}, ("(unclosed",)),
    (
        "toml-probe-bad-regex",
        toml('[processes.web]\nready = "log:[a-"\n'),
        (),
        {},
        ("[a-",),
    ),
    ("env-probe-bogus", {}, (), {"CORRAL_READY": "web=bogus:x"}, ("'bogus:x'",)),
    ("signal-unknown", {}, ("--stop-signal", "worker=NOPE"), {}, ("'NOPE'",)),
    ("signal-number-unknown", {}, ("--stop-signal", "worker=999"), {}, ("999",)),
    (
        "toml-signal-unknown",
        toml('[processes.worker]\nstop_signal = "SIGNOPE"\n'),
        (),
        {},
        ("SIGNOPE",),
    ),
    (
        "toml-unknown-key",
        toml('[processes.worker]\nretsart = "always"\n'),
        (),
        {},
        ("'retsart'", "corral.toml"),
    ),
    (
        "toml-unknown-restart-key",
        toml('[processes.worker]\nrestart = { policy = "always", dealy = 1 }\n'),
        (),
        {},
        ("'dealy'",),
    ),
    (
        "toml-unknown-probe-key",
        toml('[processes.web]\nready = { probe = "tcp:1", intervall = 1 }\n'),
        (),
        {},
        ("'intervall'",),
    ),
    ("toml-unknown-section", toml("[proceses.web]\noneshot = true\n"), (), {}, ("'proceses'",)),
    ("toml-bad-release", toml("[release]\nenable = false\n"), (), {}, ("release",)),
    ("toml-syntax", toml("[processes.web\n"), (), {}, ("corral.toml",)),
    ("toml-oneshot-not-bool", toml('[processes.migrate]\noneshot = "maybe"\n'), (), {}, ("maybe",)),
    (
        "toml-limit-zero",
        toml('[processes.worker]\nrestart = { policy = "always", limit = 0 }\n'),
        (),
        {},
        ("limit",),
    ),
    (
        "toml-negative-delay",
        toml('[processes.worker]\nrestart = { policy = "always", delay = -1 }\n'),
        (),
        {},
        ("delay",),
    ),
    (
        "pyproject-unknown-key",
        {"pyproject.toml": "[tool.corral.processes.web]\nafterr = []\n"},
        (),
        {},
        ("'afterr'", "pyproject.toml"),
    ),
    ("restart-no-policy", {}, ("--restart", "worker"), {}, ("--restart",)),
    ("after-no-colon", {}, ("--after", "web=migrate"), {}, ("--after",)),
    ("ready-timeout-bad", {}, ("--ready-timeout", "soon"), {}, ("soon",)),
    ("ready-timeout-env-bad", {}, (), {"CORRAL_READY_TIMEOUT": "-3"}, ("-3",)),
    ("stop-timeout-bad", {}, ("--stop-timeout", "worker=long"), {}, ("long",)),
    ("release-timeout-bad", {}, ("--release-timeout", "x"), {}, ("x",)),
    ("release-env-bad", {}, (), {"CORRAL_RELEASE": "perhaps"}, ("perhaps",)),
    ("cycle", {}, ("--after", "web:worker", "--after", "worker:web"), {}, ("dependency cycle",)),
    # probes that could only fail once started are load errors
    ("probe-not-a-port", {}, ("--ready", "web=tcp:notaport"), {}, ("--ready web", "'notaport'")),
    ("probe-port-zero", {}, ("--ready", "web=tcp:0"), {}, ("port '0'",)),
    ("probe-port-too-big", {}, ("--ready", "web=http:65536/"), {}, ("port '65536'",)),
    ("probe-no-port", {}, ("--ready", "web=http:localhost/health"), {}, ("port 'localhost'",)),
    ("probe-not-utf8", {}, ("--ready", "web=log:\udcff"), {}, ("not valid UTF-8",)),
    ("probe-cmd-not-utf8", {}, ("--ready", "web=cmd:echo \udcff"), {}, ("not valid UTF-8",)),
    ("probe-bytes-regex", {}, ("--ready", "web=log:(?u)x"), {}, ("bad regular expression",)),
    ("probe-huge-repeat", {}, ("--ready", "web=log:a{99999999999}"), {}, ("regular expression",)),
    ("probe-lone-dollar", {}, ("--ready", "web=tcp:$"), {}, ("a lone $",)),
    ("probe-credentials", {}, ("--ready", "web=http://u:p@db/"), {}, ("password",)),
    ("probe-space", {}, ("--ready", "web=http:$PORT/a b"), {}, ("spaces",)),
    (
        "probe-https",
        {},
        ("--ready", "web=https://localhost:8443/up"),
        {},
        ("https probes are not supported", "cmd:curl -fsk -o /dev/null https://localhost:8443/up"),
    ),
    (
        "toml-probe-nul",
        toml('[processes.web]\nready = "cmd:true\\u0000"\n'),
        (),
        {},
        ("corral.toml: processes.web.ready: the probe holds a NUL byte",),
    ),
    (
        "toml-interval-tiny",
        toml('[processes.web]\nready = { probe = "tcp:1", interval = 1e-300 }\n'),
        (),
        {},
        ("processes.web.ready.interval: must be at least",),
    ),
    (
        "toml-interval-inf",
        toml('[processes.web]\nready = { probe = "tcp:1", interval = inf }\n'),
        (),
        {},
        ("processes.web.ready.interval",),
    ),
    (
        "toml-huge-int",
        toml("[processes.web]\nstop_timeout = " + "9" * 400 + "\n"),
        (),
        {},
        ("processes.web.stop_timeout", "too large"),
    ),
    ("toml-after-number", toml("[processes.web]\nafter = 5\n"), (), {}, ("processes.web.after",)),
    ("toml-ready-number", toml("[processes.web]\nready = 3\n"), (), {}, ("processes.web.ready",)),
    (
        "toml-restart-number",
        toml("[processes.web]\nrestart = 2\n"),
        (),
        {},
        ("processes.web.restart",),
    ),
    (
        "toml-stop-signal-array",
        toml("[processes.web]\nstop_signal = []\n"),
        (),
        {},
        ("processes.web.stop_signal: expected a signal name or number",),
    ),
    ("pyproject-tool-number", {"pyproject.toml": "tool = 1\n"}, (), {}, ("pyproject.toml: tool",)),
    (
        "pyproject-corral-number",
        {"pyproject.toml": "[tool]\ncorral = 5\n"},
        (),
        {},
        ("pyproject.toml: tool.corral must be a table",),
    ),
    (
        "pyproject-processes-number",
        {"pyproject.toml": "[tool.corral]\nprocesses = 3\n"},
        (),
        {},
        ("pyproject.toml: tool.corral.processes must be a table",),
    ),
]


@pytest.mark.parametrize(
    ("files", "args", "env", "fragments"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_invalid_settings_are_one_line_errors(app_dir, files, args, env, fragments):
    d = app_dir(Procfile=PROCFILE, **files)
    r = run_corral("start", *args, cwd=d, env=env, timeout=15)
    assert_one_error(r, *fragments, allow_stdout=True)


# -- cycles ----------------------------------------------------------------------


def test_cycle_from_options(app_dir):
    d = app_dir(Procfile="a: sleep 30\nb: sleep 30\n")
    r = run_corral("start", "--after", "a:b", "--after", "b:a", cwd=d, timeout=15)
    line = assert_one_error(r, allow_stdout=True)
    assert line == "corral: error: dependency cycle: a -> b -> a", line


def test_cycle_from_toml(app_dir):
    d = app_dir(
        Procfile="a: sleep 30\nb: sleep 30\nc: sleep 30\n",
        **toml(
            '[processes.a]\nafter = ["b"]\n[processes.b]\nafter = ["c"]\n'
            '[processes.c]\nafter = ["a"]\n'
        ),
    )
    r = run_corral("start", cwd=d, timeout=15)
    line = assert_one_error(r, allow_stdout=True)
    assert line == "corral: error: dependency cycle: a -> b -> c -> a", line


def test_self_dependency_is_a_cycle(app_dir):
    d = app_dir(Procfile="a: sleep 30\nb: sleep 30\n")
    r = run_corral("start", "--after", "a:a", cwd=d, timeout=15)
    assert_one_error(r, "dependency cycle: a -> a", allow_stdout=True)


def test_cycle_through_the_release_phase(app_dir):
    d = app_dir(Procfile="web: sleep 30\nrelease: true\n")
    r = run_corral("start", "--after", "release:web", "--after", "web:release", cwd=d, timeout=15)
    assert_one_error(r, "dependency cycle:", "release", "web", allow_stdout=True)


def test_cycle_from_env(app_dir):
    d = app_dir(Procfile="a: sleep 30\nb: sleep 30\n")
    r = run_corral("start", cwd=d, env={"CORRAL_AFTER": "a:b,b:a"}, timeout=15)
    assert_one_error(r, "dependency cycle: a -> b -> a", allow_stdout=True)


# -- corral check ------------------------------------------------------------------


def test_check_validates_corral_toml(app_dir):
    d = app_dir(Procfile=PROCFILE, **toml('[processes.worker]\nrestart = "sometimes"\n'))
    r = run_corral("check", cwd=d, timeout=15)
    assert_one_error(r, "'sometimes'", "corral.toml", allow_stdout=True)


def test_check_reports_a_toml_cycle(app_dir):
    d = app_dir(
        Procfile=PROCFILE,
        **toml('[processes.web]\nafter = ["worker"]\n[processes.worker]\nafter = ["web"]\n'),
    )
    r = run_corral("check", cwd=d, timeout=15)
    assert_one_error(r, "dependency cycle: web -> worker -> web", allow_stdout=True)


def test_check_validates_lifecycle_options(app_dir):
    d = app_dir(Procfile=PROCFILE)
    r = run_corral("check", "--ready", "web=bogus:x", cwd=d, timeout=15)
    assert_one_error(r, "'bogus:x'", allow_stdout=True)


@pytest.mark.parametrize(
    ("args", "files", "fragment"),
    [
        (("--ready", "web=tcp:notaport"), {}, "'notaport'"),
        (("--ready", "web=log:\udcff"), {}, "not valid UTF-8"),
        (("--ready", "web=https://x/"), {}, "cmd:curl"),
        ((), toml('[processes.web]\nready = "cmd:true\\u0000"\n'), "NUL"),
        ((), {"pyproject.toml": "tool = 1\n"}, "pyproject.toml: tool must be a table"),
    ],
    ids=["port", "utf8", "https", "nul", "pyproject"],
)
def test_check_reports_probes_that_cannot_run(app_dir, args, files, fragment):
    d = app_dir(Procfile=PROCFILE, **files)
    r = run_corral("check", *args, cwd=d, timeout=15)
    assert_one_error(r, fragment)


def test_check_accepts_the_probe_forms(app_dir):
    d = app_dir(Procfile=PROCFILE)
    for probe in (
        "http:127.0.0.1:$PORT/",
        "http:localhost:$PORT/health",
        "http:$PORT/health",
        "http://db.internal:8080/health",
        "tcp:[::1]:$PORT",
        "tcp:db:5432",
    ):
        r = run_corral("check", "--ready", f"web={probe}", cwd=d, timeout=15)
        assert r.rc == 0, (probe, r)


def test_check_accepts_valid_settings(app_dir):
    d = app_dir(
        Procfile=PROCFILE,
        **toml(
            "[release]\ntimeout = 30\n"
            "[processes.migrate]\noneshot = true\n"
            '[processes.web]\nafter = ["migrate"]\nready = { probe = "http:$PORT/", '
            'interval = 0.2, timeout = 5 }\nstop_signal = "QUIT"\nstop_timeout = 3\n'
            '[processes.worker]\nafter = ["web", "migrate"]\n'
            'restart = { policy = "on-failure", delay = 1, max_delay = 30, limit = 5, '
            "window = 60, reset_after = 10 }\n"
        ),
    )
    r = run_corral("check", cwd=d, timeout=15)
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert "Valid procfile detected (web, worker, migrate)" in r.err


def test_check_validates_pyproject_table(app_dir):
    d = app_dir(
        Procfile=PROCFILE,
        **{"pyproject.toml": '[tool.corral.processes.web]\nready = "bogus:x"\n'},
    )
    r = run_corral("check", cwd=d, timeout=15)
    assert_one_error(r, "'bogus:x'", "pyproject.toml", allow_stdout=True)


# -- a Procfile alone ------------------------------------------------------------


@pytest.mark.parametrize("code", [0, 3])
def test_procfile_alone_first_exit_stops_everything(app_dir, mark, code):
    d = app_dir(
        Procfile=f"web: exec sleep 30\nmigrate: sleep 0.2; exit {code}\nrelay: exec sleep 30\n"
    )
    r, took = timed(lambda: run_corral("start", "-t", "1", cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == code, r
    sys_lines = system(r.out)
    in_order(sys_lines, f"migrate.1 stopped (rc={code})", "sending SIGTERM to web.1")
    assert "sending SIGTERM to relay.1" in r.out
    for word in ("waiting for", "completed", "restarting", " ready ("):
        assert word not in r.out, (word, r.out)
    assert count(sys_lines, "started (pid=") == 3
    assert took < 4, took
    assert_nothing_left(mark)


def test_unrelated_pyproject_is_ignored(app_dir):
    """A pyproject.toml without [tool.corral] changes nothing."""
    d = app_dir(
        Procfile="web: exec sleep 30\nmigrate: true\n",
        **{"pyproject.toml": '[project]\nname = "x"\n[tool.ruff]\nline-length = 99\n'},
    )
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert r.rc == 0, r
    in_order(system(r.out), "migrate.1 stopped (rc=0)", "sending SIGTERM to web.1")


# -- precedence ------------------------------------------------------------------


def test_corral_toml_beats_pyproject(app_dir):
    d = app_dir(
        Procfile="migrate: true\nweb: echo web ran\n",
        **toml("[processes.migrate]\noneshot = true\n"),
        **{"pyproject.toml": '[tool.corral.processes.migrate]\nrestart = "sometimes"\n'},
    )
    r = run_corral("start", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert "migrate.1 completed (rc=0)" in system(r.out)


def test_option_beats_toml_for_restart(app_dir):
    """corral.toml restarts worker always; `--restart worker=no` turns it off."""
    d = app_dir(
        Procfile="web: exec sleep 30\nworker: echo worker ran; exit 0\n",
        **toml('[processes.worker]\nrestart = { policy = "always", delay = 0.05 }\n'),
    )
    r = run_corral("start", "-t", "1", "--restart", "worker=no", cwd=d, timeout=20)
    assert r.rc == 0, r
    assert "restarting" not in r.out, r.out
    assert texts(r.out, "worker.1") == ["worker ran"]
    # and without the option the file's policy does apply
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert "worker.1 exited (rc=0); restarting in 0.1s (attempt 1/5)" in system(r.out), r.out


def test_options_and_toml_combine(app_dir):
    """Settings merge per key: the file's oneshot and the command line's
    --after both apply to the same run."""
    d = app_dir(
        Procfile="migrate: sleep 0.2; touch m.flag\nweb: [ -e m.flag ] && echo web after migrate\n",
        **toml("[processes.migrate]\noneshot = true\n"),
    )
    r = run_corral("start", "--after", "web:migrate", cwd=d, timeout=20)
    assert r.rc == 0, r
    assert texts(r.out, "web.1") == ["web after migrate"]


def test_option_probe_replaces_the_files(app_dir, mark):
    """A probe given on the command line replaces the file's probe for that type."""
    d = app_dir(
        Procfile="web: touch up.flag; exec sleep 30\nclient: echo go\n",
        **toml('[processes.web]\nready = "file:never.flag"\n[processes.client]\nafter = ["web"]\n'),
    )
    r = run_corral(
        "start", "-t", "1", "--ready", "web=file:up.flag", "--ready-timeout", "3", cwd=d, timeout=20
    )
    assert r.rc == 0, r
    in_order(system(r.out), "web.1 ready (file:up.flag)", "client.1 started")
    assert_nothing_left(mark)


def test_option_beats_env(app_dir):
    d = app_dir(Procfile="web: exec sleep 30\nworker: echo worker ran; exit 0\n")
    r = run_corral(
        "start",
        "-t",
        "1",
        "--restart",
        "worker=no",
        env={"CORRAL_RESTART": "worker=always"},
        cwd=d,
        timeout=20,
    )
    assert r.rc == 0, r
    assert "restarting" not in r.out, r.out


def test_env_beats_toml(app_dir):
    d = app_dir(
        Procfile="web: exec sleep 30\nworker: echo worker ran; exit 0\n",
        **toml('[processes.worker]\nrestart = { policy = "always", delay = 0.05 }\n'),
    )
    r = run_corral("start", "-t", "1", env={"CORRAL_RESTART": "worker=no"}, cwd=d, timeout=20)
    assert r.rc == 0, r
    assert "restarting" not in r.out, r.out


def test_dotenv_beats_os_environment(app_dir):
    d = app_dir(
        Procfile="web: exec sleep 30\nworker: echo worker ran; exit 0\n",
        **{".env": "CORRAL_RESTART=worker=no\n"},
    )
    r = run_corral("start", "-t", "1", env={"CORRAL_RESTART": "worker=always"}, cwd=d, timeout=20)
    assert r.rc == 0, r
    assert "restarting" not in r.out, r.out
