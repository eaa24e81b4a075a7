from __future__ import annotations

import math
import re
import signal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import CorralError, UsageError
from corral.lifecycle import Settings, apply_options, check_cycles, load_file, policies
from corral.specs import Policy, ProbeSpec, RestartPolicy

KNOWN = ["release", "migrate", "web", "worker"]


def build(settings: Settings | None = None, **options: list[str]) -> dict[str, Policy]:
    return policies(apply_options(settings or Settings(), **options), KNOWN)


def test_plain_procfile_gets_default_policies_except_release() -> None:
    result = policies(Settings(release=False), KNOWN)
    assert set(result.values()) == {Policy()}


def test_release_is_a_oneshot_everyone_waits_for() -> None:
    result = policies(Settings(release_timeout=30), KNOWN)
    assert result["release"].oneshot and result["release"].run_timeout == 30
    assert all(result[n].after == ("release",) for n in ("migrate", "web", "worker"))


def test_release_does_not_wait_for_itself_through_its_own_dependencies() -> None:
    settings = Settings(
        processes={"release": {"after": ["migrate"]}, "migrate": {"after": ["web"]}}
    )
    result = policies(settings, KNOWN)
    assert result["release"].after == ("migrate",)
    assert result["migrate"].after == ("web",)
    assert result["web"].after == ()
    assert result["worker"].after == ("release",)


def test_command_line_forms() -> None:
    result = build(
        Settings(release=False),
        oneshot=["migrate"],
        restart=["worker=on-failure"],
        after=["web:migrate+worker", "worker:migrate"],
        ready=["web=tcp:$PORT", "worker=log:ready, steady"],
        stop_signal=["worker=INT,web=3"],
        stop_timeout=["worker=7.5"],
    )
    assert result["migrate"].oneshot
    assert result["worker"].restart == RestartPolicy(mode="on-failure")
    assert result["web"].after == ("migrate", "worker")
    assert result["web"].ready == ProbeSpec("tcp", "$PORT")
    assert result["worker"].ready == ProbeSpec("log", "ready, steady")
    assert result["worker"].stop_signal == signal.SIGINT
    assert result["web"].stop_signal == signal.SIGQUIT
    assert result["worker"].stop_timeout == 7.5


def test_toml_file_and_options_win(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_text(
        "[release]\nenabled = false\n"
        "[processes.worker]\n"
        'restart = { policy = "always", delay = 0.5, limit = 3 }\n'
        'stop_signal = "QUIT"\n'
        "[processes.web]\n"
        'ready = { probe = "http://localhost:$PORT/health", interval = 0.2, timeout = 9 }\n'
    )
    settings = load_file(tmp_path)
    assert not settings.release
    result = policies(apply_options(settings, stop_signal=["worker=INT"]), KNOWN)
    assert result["worker"].restart == RestartPolicy(mode="always", delay=0.5, limit=3)
    assert result["worker"].stop_signal == signal.SIGINT
    assert result["web"].ready == ProbeSpec("http", "http://localhost:$PORT/health", 0.2, 9)
    assert result["migrate"].after == ()


def test_pyproject_tool_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n[tool.corral.processes.migrate]\noneshot = true\n'
    )
    assert load_file(tmp_path).processes == {"migrate": {"oneshot": True}}
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_file(tmp_path).processes == {}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"restart": ["nope=always"]}, "unknown process 'nope'"),
        ({"restart": ["worker=sometimes"]}, "unknown policy 'sometimes'"),
        ({"restart": ["worker"]}, "--restart: bad value 'worker'"),
        ({"after": ["web:ghost"]}, "unknown process 'ghost'"),
        ({"after": ["web:web"]}, "dependency cycle: web -> web"),
        ({"after": ["web:worker", "worker:migrate", "migrate:web"]}, "dependency cycle: "),
        ({"ready": ["web=bogus:1"]}, "cannot parse probe 'bogus:1'"),
        ({"ready": ["web=log:("]}, "bad regular expression"),
        ({"stop_signal": ["web=NOPE"]}, "unknown signal 'NOPE'"),
        ({"stop_timeout": ["web=-1"]}, "expected 0 or more seconds"),
    ],
)
def test_invalid_settings(options: dict[str, list[str]], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        build(Settings(release=False), **options)


def test_cycle_message_names_the_cycle() -> None:
    a = Policy(after=("b",))
    b = Policy(after=("c",))
    c = Policy(after=("a",))
    with pytest.raises(UsageError, match=r"dependency cycle: a -> b -> c -> a"):
        check_cycles({"a": a, "b": b, "c": c})


def test_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_text("[processes.web\n")
    with pytest.raises(CorralError, match=r"corral\.toml: .*line 1"):
        load_file(tmp_path)
    (tmp_path / "corral.toml").write_text("[processes.web]\nretsart = 'always'\n")
    with pytest.raises(CorralError, match="unknown setting 'retsart'"):
        load_file(tmp_path)


def test_restart_decisions() -> None:
    assert not RestartPolicy().wants_restart(1)
    assert RestartPolicy(mode="on-failure").wants_restart(1)
    assert RestartPolicy(mode="on-failure").wants_restart(137)
    assert not RestartPolicy(mode="on-failure").wants_restart(0)
    assert RestartPolicy(mode="always").wants_restart(0)


# -- wrong types, hostile values: one-line errors naming the file and key ----------

PROCESSES = ["web"]


def check_file(tmp_path: Path, name: str, text: str) -> str:
    """Load `name` holding `text` and build the policies; the one-line error."""
    (tmp_path / name).write_text(text)
    with pytest.raises(CorralError) as info:
        policies(load_file(tmp_path), PROCESSES)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("tool = 1\n", ("pyproject.toml: tool must be a table",)),
        ("[tool]\ncorral = 5\n", ("pyproject.toml: tool.corral must be a table",)),
        ("[tool.corral]\nprocesses = 3\n", ("pyproject.toml: tool.corral.processes must be",)),
        ("[tool.corral.processes]\nweb = 3\n", ("tool.corral.processes.web must be a table",)),
        ("[tool.corral]\nrelease = 3\n", ("tool.corral.release takes",)),
        ("[tool.corral.proceses]\n", ("pyproject.toml: tool.corral: unknown section 'proceses'",)),
        (
            "[tool.corral.processes.web]\nafter = 5\n",
            ("pyproject.toml: tool.corral.processes.web.after: expected a list",),
        ),
    ],
)
def test_pyproject_wrong_types(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    message = check_file(tmp_path, "pyproject.toml", text)
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("after = 5", "processes.web.after: expected a list of process names"),
        ("after = [1]", "processes.web.after: expected a list"),
        ("ready = 3", "processes.web.ready: expected 'KIND:TARGET' or a table"),
        ("ready = []", "processes.web.ready: expected"),
        ("ready = { probe = 5 }", "processes.web.ready.probe: expected 'KIND:TARGET'"),
        ("ready = { interval = 1 }", "processes.web.ready: expected a table with probe"),
        ('ready = { probe = "tcp:1", interval = "soon" }', "processes.web.ready.interval"),
        ('ready = { probe = "tcp:1", interval = 1e-300 }', "ready.interval: must be at least"),
        ('ready = { probe = "tcp:1", interval = inf }', "ready.interval: expected 0 or more"),
        ('ready = { probe = "tcp:1", timeout = nan }', "ready.timeout: expected 0 or more"),
        ('ready = "cmd:true\\u0000"', "processes.web.ready: the probe holds a NUL byte"),
        ('ready = "tcp:notaport"', "processes.web.ready: port 'notaport'"),
        ("restart = 2", "processes.web.restart: expected a policy name or a table"),
        ("restart = { policy = 5 }", "processes.web.restart.policy: expected no, on-failure"),
        ('restart = { policy = "always", delay = [] }', "processes.web.restart.delay"),
        ('restart = { policy = "always", limit = 1.5 }', "restart.limit: expected a whole"),
        ("stop_signal = []", "processes.web.stop_signal: expected a signal name or number"),
        ("stop_signal = true", "processes.web.stop_signal: expected a signal"),
        ('stop_signal = "\\u0000"', "processes.web.stop_signal: unknown signal"),
        ("stop_signal = 99999999999999999999", "processes.web.stop_signal: unknown signal"),
        ("stop_timeout = 1e400", "processes.web.stop_timeout: expected 0 or more seconds"),
        ("stop_timeout = -inf", "processes.web.stop_timeout: expected 0 or more seconds"),
        ("stop_timeout = " + "9" * 400, "processes.web.stop_timeout: 99999"),
        ("stop_timeout = 1979-05-27", "processes.web.stop_timeout: expected seconds, not a date"),
        ("timeout = {}", "processes.web.timeout: expected seconds, not a table"),
        ('oneshot = "maybe"', "processes.web.oneshot: expected true or false"),
        ("oneshot = 1", "processes.web.oneshot: expected true or false"),
    ],
)
def test_corral_toml_wrong_values(tmp_path: Path, setting: str, fragment: str) -> None:
    message = check_file(tmp_path, "corral.toml", f"[processes.web]\n{setting}\n")
    assert message.startswith(f"{tmp_path / 'corral.toml'}: "), message
    assert fragment in message, message
    assert len(message) < 300, message  # a huge value is cut short


def test_release_timeout_types(tmp_path: Path) -> None:
    message = check_file(tmp_path, "corral.toml", "[release]\ntimeout = [1]\n")
    assert "corral.toml: release.timeout: expected seconds, not an array" in message


def test_long_but_finite_values_are_accepted(tmp_path: Path) -> None:
    """The supervisor clamps its waits: long timeouts are not load errors."""
    (tmp_path / "corral.toml").write_text(
        "[processes.web]\nstop_timeout = 1e300\ntimeout = 1e300\n"
        'restart = { policy = "always", delay = 1e300, limit = 1e300, window = 1e300 }\n'
        'ready = { probe = "tcp:1", interval = 1e300, timeout = 1e300 }\n'
    )
    policy = policies(load_file(tmp_path), PROCESSES)["web"]
    assert policy.stop_timeout == 1e300 and policy.restart.limit == int(1e300)
    assert policy.ready == ProbeSpec("tcp", "1", 1e300, 1e300)


def test_option_errors_name_the_option_not_the_file(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_text('[processes.web]\nready = "file:x"\n')
    settings = apply_options(load_file(tmp_path), ready=["web=tcp:notaport"])
    with pytest.raises(UsageError) as info:
        policies(settings, PROCESSES)
    assert str(info.value).startswith("--ready web: port 'notaport'"), info.value
    settings = apply_options(load_file(tmp_path), restart=["nosuch=always"])
    with pytest.raises(UsageError, match=r"^--restart nosuch: unknown process 'nosuch'"):
        policies(settings, PROCESSES)


def test_after_option_extends_the_files_list(tmp_path: Path) -> None:
    (tmp_path / "corral.toml").write_text('[processes.web]\nafter = "db"\n')
    settings = apply_options(load_file(tmp_path), after=["web:cache"])
    assert policies(settings, ["web", "db", "cache"])["web"].after == ("db", "cache")
    (tmp_path / "corral.toml").write_text("[processes.web]\nafter = 5\n")
    with pytest.raises(UsageError, match=r"corral\.toml: processes\.web\.after: expected a list"):
        apply_options(load_file(tmp_path), after=["web:cache"])


def test_config_errors_name_the_files_path(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "corral.toml").write_text("[processes.web]\nafter = 5\n")
    with pytest.raises(UsageError, match=re.escape(f"{app / 'corral.toml'}: processes.web.after")):
        policies(load_file(app), PROCESSES)


@pytest.mark.parametrize(
    "probe",
    [
        "http:127.0.0.1:$PORT/",
        "http:localhost:$PORT/health",
        "http:$PORT/path",
        "http://localhost:$PORT/health",
        "tcp:[::1]:$PORT",
        "tcp:db:5432",
    ],
)
def test_probe_forms_people_write_are_accepted(probe: str) -> None:
    result = build(Settings(release=False), ready=[f"web={probe}"])
    assert str(result["web"].ready) == probe


def test_https_probe_names_the_alternative() -> None:
    with pytest.raises(UsageError) as info:
        build(Settings(release=False), ready=["web=https://localhost:8443/health"])
    assert "https probes are not supported" in str(info.value)
    assert "cmd:curl -fsk -o /dev/null https://localhost:8443/health" in str(info.value)


@settings(deadline=None, max_examples=200)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text()))
def test_seconds_never_crash(value: object) -> None:
    """Any number or text a setting may hold is a duration or a UsageError."""
    try:
        settings_ = Settings(release=False, processes={"web": {"stop_timeout": value}})
        result = policies(settings_, KNOWN)
    except UsageError as exc:
        assert "\n" not in str(exc)
        return
    seconds = result["web"].stop_timeout
    assert seconds is not None and seconds >= 0 and math.isfinite(seconds)
