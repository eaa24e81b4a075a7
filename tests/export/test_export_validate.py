"""The real output, hostile .env included, through each target's own validator:
`systemd-analyze verify` (any output fails), `check-jsonschema` with the
compose-spec schema, `kubernetes-validate --strict`, and supervisor's own
config parser.  Each validator is first shown to reject a broken file, so a
validator that silently accepts everything cannot make these tests pass.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
from pathlib import Path
from typing import Any

import pytest

from corral.export import ExportContext, render, write
from tests.export.hostile import EXTRA, HOSTILE, context, lifecycle_context
from tests.export.tools import module, run, system_tool, venv_tool

K8S_VERSION = "1.32.0"  # bundled by kubernetes-validate (1.25.0 ... 1.37.0)


def systemd_verify(folder: Path) -> tuple[int, str]:
    tool = system_tool("systemd-analyze")
    units = sorted(f"./{p.name}" for p in folder.iterdir())
    result = run([tool, "verify", *units], cwd=folder)
    return result.returncode, result.stdout + result.stderr


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    write(render("systemd", context()), tmp_path / "good")
    rc, output = systemd_verify(tmp_path / "good")
    assert (rc, output) == (0, "")

    broken = tmp_path / "broken"
    write(render("systemd", context(counts={"web": 1, "worker": 0, "foo_bar": 0})), broken)
    unit = broken / "my_app-web.1.service"
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    rc, output = systemd_verify(broken)
    assert "restart specifier" in output  # rc is 0 here: only the output tells


def test_systemd_analyze_verify_other_options(tmp_path: Path) -> None:
    ctx = context(
        app="other.app",
        shell="/bin/bash",
        timeout=2.5,
        app_root=Path("/srv/100% app"),
        user="root",
    )
    write(render("systemd", ctx), tmp_path)
    assert systemd_verify(tmp_path) == (0, "")
    assert "TimeoutStopSec=2500ms\n" in (tmp_path / "other.app-web.1.service").read_text()


def test_systemd_analyze_verify_lifecycle(tmp_path: Path) -> None:
    """Type=oneshot, After=/Requires=, ExecStartPost= probes, start limits,
    KillSignal=, and a one-shot with restart always (exported as on-failure)."""
    toml = "[processes.migrate]\noneshot = true\nrestart = 'always'\n"
    write(render("systemd", lifecycle_context(env={**HOSTILE, **EXTRA})), tmp_path / "all")
    assert systemd_verify(tmp_path / "all") == (0, "")
    write(render("systemd", lifecycle_context(toml=toml)), tmp_path / "always")
    assert systemd_verify(tmp_path / "always") == (0, "")


HOSTILE_WEB_PROBE = 'file:/srv/100% "q" it\'s $$x %i\nnl'
HOSTILE_WORKER_PROBE = 'cmd:test -n "$SPACES" # 100% ;'
# TOML basic strings take JSON's escapes for these characters
HOSTILE_PROBES_TOML = (
    f"[processes.web]\nready = {json.dumps(HOSTILE_WEB_PROBE)}\n"
    f"[processes.worker]\nready = {json.dumps(HOSTILE_WORKER_PROBE)}\n"
    'after = ["web"]\n'
)


@pytest.mark.parametrize("fmt", ["systemd", "compose", "kubernetes"])
def test_hostile_probe_targets_validate(tmp_path: Path, fmt: str) -> None:
    ctx = lifecycle_context(toml=HOSTILE_PROBES_TOML, env={**HOSTILE, **EXTRA})
    files = render(fmt, ctx)
    write(files, tmp_path)
    if fmt == "systemd":
        assert systemd_verify(tmp_path) == (0, "")
        unit = (tmp_path / "my_app-web.1.service").read_text()
        assert "ExecStartPost=" in unit and "100%% " in unit
    elif fmt == "compose":
        assert check_compose(tmp_path / "compose.yaml") == (0, "ok -- validation done\n")
    else:
        rc, output = check_k8s(tmp_path / "my_app.yaml")
        assert rc == 0, output


def check_compose(path: Path) -> tuple[int, str]:
    tool = venv_tool("check-jsonschema")
    result = run([tool, "--builtin-schema", "vendor.compose-spec", str(path)])
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("image", [None, "registry.example/app:1.0"])
def test_compose_schema(tmp_path: Path, image: str | None) -> None:
    write(render("compose", context(image=image)), tmp_path)
    rc, output = check_compose(tmp_path / "compose.yaml")
    assert rc == 0, output


def test_compose_schema_lifecycle(tmp_path: Path) -> None:
    write(render("compose", lifecycle_context(env={**HOSTILE, **EXTRA})), tmp_path)
    rc, output = check_compose(tmp_path / "compose.yaml")
    assert rc == 0, output


def test_compose_schema_rejects_a_broken_file(tmp_path: Path) -> None:
    write(render("compose", context()), tmp_path)
    path = tmp_path / "compose.yaml"
    path.write_text(path.read_text().replace("    restart:", "    restrat:"))
    rc, output = check_compose(path)
    assert rc == 1 and "restrat" in output


def check_k8s(path: Path) -> tuple[int, str]:
    tool = venv_tool("kubernetes-validate")
    result = run([tool, "--strict", "-k", K8S_VERSION, str(path)])
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("secret", [False, True])
def test_kubernetes_validate(tmp_path: Path, secret: bool) -> None:
    write(render("kubernetes", context(secret=secret, app="9_Lives")), tmp_path)
    rc, output = check_k8s(tmp_path / "9_Lives.yaml")
    assert rc == 0, output
    assert output.count("passed for resource") == 6, output


def test_kubernetes_validate_lifecycle(tmp_path: Path) -> None:
    ctx = lifecycle_context(env={**HOSTILE, **EXTRA}, counts={"web": 2, "migrate": 0})
    write(render("kubernetes", ctx), tmp_path)
    rc, output = check_k8s(tmp_path / "my_app.yaml")
    assert rc == 0, output
    # ConfigMap, 2 Jobs, 5 Deployments, 1 Service
    assert output.count("passed for resource") == 9, output
    assert output.count("passed for resource job/") == 2, output


def test_kubernetes_validate_lifecycle_rejects_a_broken_job(tmp_path: Path) -> None:
    write(render("kubernetes", lifecycle_context()), tmp_path)
    path = tmp_path / "my_app.yaml"
    path.write_text(path.read_text().replace("  backoffLimit: 0", '  backoffLimit: "none"'))
    rc, output = check_k8s(path)
    assert rc != 0 and "none" in output


def test_kubernetes_validate_rejects_a_broken_file(tmp_path: Path) -> None:
    write(render("kubernetes", context()), tmp_path)
    path = tmp_path / "my_app.yaml"
    path.write_text(path.read_text().replace("  replicas: 2", '  replicas: "two"'))
    rc, output = check_k8s(path)
    assert rc != 0 and "two" in output


def supervisor_groups(tmp_path: Path, ctx: ExportContext) -> dict[str, Any]:
    """The program groups supervisord's own config parser makes of the export."""
    options = module("supervisor.options")
    (tmp_path / "log").mkdir()
    write(render("supervisord", ctx), tmp_path / "out")
    master = tmp_path / "supervisord.conf"
    master.write_text(
        "[supervisord]\n"
        f"logfile={tmp_path}/supervisord.log\n"
        f"pidfile={tmp_path}/supervisord.pid\n"
        "[include]\n"
        f"files={tmp_path}/out/my_app.conf\n"
    )
    opts = options.ServerOptions()
    opts.realize(args=["-c", str(master)])
    opts.process_config(do_usage=False)
    return {g.name: g for g in opts.process_group_configs}


def test_supervisor_parses_the_config(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    ctx = context(user=user, app_root=tmp_path, log_dir=str(tmp_path / "log"))
    groups = supervisor_groups(tmp_path, ctx)
    assert list(groups) == ["my_app"]
    programs = {p.name: p for p in groups["my_app"].process_configs}
    assert list(programs) == ["my_app-web-1", "my_app-web-2", "my_app-worker-1", "my_app-foo_bar-1"]
    hostile = {k: v for k, v in {**HOSTILE, **EXTRA}.items() if k != "PORT"}
    for name, port, ps in [
        ("my_app-web-2", "5001", "web.2"),
        ("my_app-foo_bar-1", "5200", "foo_bar.1"),
    ]:
        proc = programs[name]
        assert proc.directory == str(tmp_path)
        assert proc.stopasgroup and proc.killasgroup
        assert proc.stopwaitsecs == 5
        assert proc.stdout_logfile == f"{tmp_path}/log/{name.split('-', 1)[1]}.log"
        assert proc.environment["PORT"] == port
        assert proc.environment["PS"] == ps
        # each hostile value is either in environment= exactly or exported by the shell
        for key, value in hostile.items():
            if key in proc.environment:
                assert proc.environment[key] == value, key
            else:
                assert f" {key}=" in proc.command, key


def test_supervisor_parses_the_lifecycle_config(tmp_path: Path) -> None:
    user = pwd.getpwuid(os.getuid()).pw_name
    ctx = lifecycle_context(
        env={**HOSTILE, **EXTRA}, user=user, app_root=tmp_path, log_dir=str(tmp_path / "log")
    )
    groups = supervisor_groups(tmp_path, ctx)
    programs = {p.name.split("-")[1]: p for p in groups["my_app"].process_configs}
    assert sorted(programs) == ["cache", "clock", "db", "migrate", "release", "web", "worker"]
    datatypes = module("supervisor.datatypes")
    for name in ("release", "migrate"):  # one-shots: exit 0 is success, never restarted
        assert programs[name].autorestart is False
        assert programs[name].startsecs == 0
    assert programs["worker"].autorestart is datatypes.RestartWhenExitUnexpected
    assert programs["clock"].autorestart is datatypes.RestartUnconditionally
    assert programs["worker"].startretries == 5
    assert programs["worker"].stopsignal == signal.SIGINT
    assert programs["worker"].stopwaitsecs == 30
    assert programs["web"].stopsignal == signal.SIGQUIT
    assert programs["web"].stopwaitsecs == 13  # 12.5 s, rounded up
    assert programs["db"].stopsignal == signal.SIGINT
    # dependencies start first: db, then release, then the rest by level
    priority = {name: p.priority for name, p in programs.items()}
    assert priority["db"] < priority["release"] < priority["migrate"] < priority["web"]
    assert priority["release"] < priority["worker"] < priority["clock"]
