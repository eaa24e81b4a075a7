from __future__ import annotations

import signal
from pathlib import Path

import pytest

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
