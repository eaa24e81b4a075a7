"""The real output, hostile .env included, through each target's own validator:
`systemd-analyze verify` (any output fails), `check-jsonschema` with the
compose-spec schema, `kubernetes-validate --strict`, and supervisor's own
config parser.  Each validator is first shown to reject a broken file, so a
validator that silently accepts everything cannot make these tests pass.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from corral.export import render, write
from tests.export.hostile import EXTRA, HOSTILE, context
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


def check_compose(path: Path) -> tuple[int, str]:
    tool = venv_tool("check-jsonschema")
    result = run([tool, "--builtin-schema", "vendor.compose-spec", str(path)])
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("image", [None, "registry.example/app:1.0"])
def test_compose_schema(tmp_path: Path, image: str | None) -> None:
    write(render("compose", context(image=image)), tmp_path)
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


def test_kubernetes_validate_rejects_a_broken_file(tmp_path: Path) -> None:
    write(render("kubernetes", context()), tmp_path)
    path = tmp_path / "my_app.yaml"
    path.write_text(path.read_text().replace("  replicas: 2", '  replicas: "two"'))
    rc, output = check_k8s(path)
    assert rc != 0 and "two" in output


def test_supervisor_parses_the_config(tmp_path: Path) -> None:
    options = module("supervisor.options")
    user = pwd.getpwuid(os.getuid()).pw_name
    ctx = context(user=user, app_root=tmp_path, log_dir=str(tmp_path / "log"))
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
    groups = {g.name: g for g in opts.process_group_configs}
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
