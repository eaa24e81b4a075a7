"""Black-box tests of `corral export` through the installed `corral` command:
options reach the files, the hostile .env file arrives unchanged, and user
errors are one `corral: error:` line with exit status 1.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.export.hostile import ENV_TEXT, HOSTILE
from tests.export.tools import module
from tests.support import CORRAL, Result, assert_no_traceback, base_env, run_corral

yaml = module("yaml")

PROCFILE = """\
web: python3 -m http.server $PORT
worker: python3 worker.py "$SPACES"
foo_bar: sleep 60
"""
EXPECTED_ENV = {k: v for k, v in HOSTILE.items() if k != "PORT"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "shop_app"
    root.mkdir()
    (root / "Procfile").write_text(PROCFILE)
    (root / ".env").write_text(ENV_TEXT)
    return root


def export(project: Path, *args: str) -> Result:
    return run_corral("export", *args, cwd=project)


def assert_user_error(result: Result, *fragments: str) -> None:
    assert result.rc == 1, result
    assert_no_traceback(result)
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("corral: error: "), result.err
    for fragment in fragments:
        assert fragment in lines[0], result.err


def test_systemd_with_options(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "units"
    args = [
        "-a",
        "shop",
        "-u",
        "www",
        "-p",
        "6000",
        "-c",
        "web=2,worker=0",
        "-T",
        "7",
        "-s",
        "/bin/bash",
    ]
    r = export(project, *args, "systemd", str(out))
    assert r.rc == 0, r
    assert sorted(p.name for p in out.iterdir()) == [
        "shop-foo_bar.1.service",
        "shop-web.1.service",
        "shop-web.2.service",
        "shop.target",
    ]
    unit = (out / "shop-web.2.service").read_text()
    assert "User=www\n" in unit
    assert f"WorkingDirectory={project}\n" in unit
    assert 'Environment="PORT=6001"\n' in unit
    assert 'Environment="NEWLINES=line1\\nline2\\n\\n"\n' in unit
    assert "TimeoutStopSec=7\n" in unit
    assert unit.count("ExecStart=/bin/bash -c ") == 1
    assert 'Environment="PORT=6200"\n' in (out / "shop-foo_bar.1.service").read_text()


def test_defaults_from_the_app_directory(project: Path, tmp_path: Path) -> None:
    (project / ".env").write_text("A=1\n")
    out = tmp_path / "new" / "runit"  # created with its parents
    r = export(project, "runit", str(out))
    assert r.rc == 0, r
    run = (out / "shop_app-web-1/run").read_text()
    assert "chpst -P -u shop_app -e ./env /bin/sh -c " in run
    assert (out / "shop_app-web-1/env/PORT").read_text() == "5000\n"
    assert (out / "shop_app-worker-1/env/PORT").read_text() == "5100\n"
    assert (out / "shop_app-web-1/env/A").read_text() == "1\n"
    assert "/var/log/shop_app/web-1" in (out / "shop_app-web-1/log/run").read_text()


def test_compose_alias_image_and_hostile_env(project: Path, tmp_path: Path) -> None:
    r = export(
        project, "--image", "shop:1", "-c", "web=3", "-p", "7000", "docker-compose", str(tmp_path)
    )
    assert r.rc == 0, r
    doc = yaml.safe_load((tmp_path / "compose.yaml").read_text())
    assert "version" not in doc
    web = doc["services"]["web"]
    assert web["image"] == "shop:1"
    assert web["deploy"] == {"mode": "replicated", "replicas": 3}
    assert web["env_file"] == [str(project / ".env")]
    env = {k: v.replace("$$", "$") for k, v in web["environment"].items()}
    assert env == {"PORT": "7000", **EXPECTED_ENV}
    assert doc["services"]["foo-bar"]["environment"]["PORT"] == "7200"


def test_kubernetes_secret(project: Path, tmp_path: Path) -> None:
    r = export(project, "--k8s-secret", "-p", "5000", "k8s", str(tmp_path))
    assert r.rc == 0, r
    docs = list(yaml.safe_load_all((tmp_path / "shop_app.yaml").read_text()))
    assert docs[0]["kind"] == "Secret"
    assert docs[0]["stringData"] == EXPECTED_ENV
    names = [d["metadata"]["name"] for d in docs]
    assert names == [
        "shop-app-env",
        "shop-app-web",
        "shop-app-worker",
        "shop-app-foo-bar",
        "shop-app-web",
    ]


def test_supervisord_env_file_option(project: Path, tmp_path: Path) -> None:
    (project / "prod.env").write_text("ONLY=prod%\n")
    r = run_corral("-e", "prod.env", "export", "supervisord", str(tmp_path), cwd=project)
    assert r.rc == 0, r
    conf = (tmp_path / "shop_app.conf").read_text()
    assert 'ONLY="prod%%"' in conf
    assert "SPACES=" not in conf
    assert (
        "[group:shop_app]\nprograms=shop_app-web-1,shop_app-worker-1,shop_app-foo_bar-1\n" in conf
    )


def test_user_template(project: Path, tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "systemd.target").write_text("# custom $app\nWants=$wants\n")
    r = export(project, "-t", str(templates), "systemd", str(tmp_path / "out"))
    assert r.rc == 0, r
    target = (tmp_path / "out" / "shop_app.target").read_text()
    assert target.startswith("# custom shop_app\nWants=shop_app-web.1.service ")


def test_unknown_format(project: Path, tmp_path: Path) -> None:
    assert_user_error(export(project, "upstart", str(tmp_path)), "upstart", "systemd", "k8s")


def test_location_is_a_file(project: Path, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert_user_error(export(project, "systemd", str(target)), "not a directory")
    assert target.read_text() == "x"


def test_location_without_permission_as_another_user(
    project: Path, request: pytest.FixtureRequest
) -> None:
    """A folder the user may not enter: one line naming it, not a PermissionError traceback."""
    # pytest's tmp_path is private to root: work where nobody may look
    base = Path(tempfile.mkdtemp(prefix="corral-export-"))
    request.addfinalizer(lambda: shutil.rmtree(base))
    base.chmod(0o755)
    app = base / "app"
    shutil.copytree(project, app)
    app.chmod(0o755)
    for path in app.iterdir():
        path.chmod(0o644)
    locked = base / "locked"
    locked.mkdir(mode=0o700)
    as_nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CORRAL)
    proc = subprocess.run(
        [*as_nobody, "export", "systemd", str(locked / "units")],
        cwd=app,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert_user_error(Result(proc.returncode, proc.stdout, proc.stderr), "locked", "ermission")
    assert not (locked / "units").exists()


def test_bad_template_dir(project: Path, tmp_path: Path) -> None:
    r = export(project, "-t", str(tmp_path / "nope"), "systemd", str(tmp_path / "out"))
    assert_user_error(r, "template directory", "does not exist")


def test_bad_template_placeholder(project: Path, tmp_path: Path) -> None:
    (tmp_path / "runit.run").write_text("#!/bin/sh\n$nonsense\n")
    r = export(project, "-t", str(tmp_path), "runit", str(tmp_path / "out"))
    assert_user_error(r, "runit.run", "$nonsense")


def test_unknown_concurrency_type(project: Path, tmp_path: Path) -> None:
    assert_user_error(export(project, "-c", "nope=2", "systemd", str(tmp_path)), "nope")


def test_bad_variable_name(project: Path, tmp_path: Path) -> None:
    (project / ".env").write_text("BAD.NAME=1\n")
    assert_user_error(export(project, "systemd", str(tmp_path)), "BAD.NAME")


# -- lifecycle settings ----------------------------------------------------------

LIFECYCLE_PROCFILE = """\
release: ./manage.py migrate
migrate: ./load-fixtures.sh
web: gunicorn app:app --bind 0.0.0.0:$PORT
worker: celery -A app worker
"""


@pytest.fixture
def lifecycle_project(tmp_path: Path) -> Path:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "Procfile").write_text(LIFECYCLE_PROCFILE)
    return root


def test_compose_lifecycle_options(lifecycle_project: Path, tmp_path: Path) -> None:
    r = export(
        lifecycle_project,
        "compose",
        str(tmp_path),
        "--restart",
        "worker=always",
        "--oneshot",
        "migrate",
        "--after",
        "web:migrate",
        "--ready",
        "web=http:$PORT/health",
        "--stop-signal",
        "worker=INT",
        "--stop-timeout",
        "worker=30",
    )
    assert r.rc == 0, r
    services = yaml.safe_load((tmp_path / "compose.yaml").read_text())["services"]
    assert services["worker"]["restart"] == "always"
    assert services["worker"]["stop_signal"] == "SIGINT"
    assert services["worker"]["stop_grace_period"] == "30s"
    assert services["migrate"]["restart"] == "no"
    assert services["release"]["restart"] == "no"
    assert services["web"]["restart"] == "on-failure"  # not set: the export default
    assert services["web"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "release": {"condition": "service_completed_successfully"},
    }
    assert services["worker"]["depends_on"] == {
        "release": {"condition": "service_completed_successfully"}
    }
    assert "http://127.0.0.1:$${PORT}/health" in services["web"]["healthcheck"]["test"][1]


def test_the_options_reach_every_format(lifecycle_project: Path, tmp_path: Path) -> None:
    args = ("--restart", "worker=always", "--oneshot", "migrate", "--no-release")
    assert export(lifecycle_project, "systemd", str(tmp_path / "sd"), *args).rc == 0
    worker = (tmp_path / "sd" / "shop-worker.1.service").read_text()
    assert "Restart=always\n" in worker and "StartLimitBurst=6\n" in worker
    migrate = (tmp_path / "sd" / "shop-migrate.1.service").read_text()
    assert "Type=oneshot\n" in migrate
    release = (tmp_path / "sd" / "shop-release.1.service").read_text()
    assert "Type=oneshot" not in release  # --no-release
    assert export(lifecycle_project, "k8s", str(tmp_path / "k8s"), *args).rc == 0
    docs = list(yaml.safe_load_all((tmp_path / "k8s" / "shop.yaml").read_text()))
    kinds = {d["metadata"]["name"]: d["kind"] for d in docs if d["kind"] != "Service"}
    assert kinds == {
        "shop-release": "Deployment",
        "shop-migrate": "Job",
        "shop-web": "Deployment",
        "shop-worker": "Deployment",
    }


def test_corral_toml_and_environment(lifecycle_project: Path, tmp_path: Path) -> None:
    (lifecycle_project / "corral.toml").write_text(
        '[release]\ntimeout = 60\n[processes.worker]\nstop_signal = "INT"\n'
        'restart = { policy = "on-failure", delay = 3, limit = 4, window = 30 }\n'
    )
    r = run_corral(
        "export",
        "supervisord",
        str(tmp_path),
        cwd=lifecycle_project,
        env={"CORRAL_ONESHOT": "migrate"},
    )
    assert r.rc == 0, r
    conf = (tmp_path / "shop.conf").read_text()
    worker = conf.split("[program:shop-worker-1]")[1].split("\n\n")[0]
    assert "stopsignal=INT\n" in worker and "startretries=4\n" in worker
    migrate = conf.split("[program:shop-migrate-1]")[1].split("\n\n")[0]
    assert "autorestart=false\n" in migrate and "startsecs=0\n" in migrate
    r = export(lifecycle_project, "systemd", str(tmp_path / "sd"))
    assert r.rc == 0, r
    worker_unit = (tmp_path / "sd" / "shop-worker.1.service").read_text()
    assert "RestartSec=3\n" in worker_unit and "StartLimitIntervalSec=30\n" in worker_unit
    assert "StartLimitBurst=5\n" in worker_unit and "KillSignal=SIGINT\n" in worker_unit
    release = (tmp_path / "sd" / "shop-release.1.service").read_text()
    assert "TimeoutStartSec=60\n" in release


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--restart", "nope=always"), ("unknown process 'nope'",)),
        (("--restart", "worker=sometimes"), ("unknown policy 'sometimes'",)),
        (("--ready", "web=bogus"), ("cannot parse probe",)),
        (("--after", "web:worker", "--after", "worker:web"), ("dependency cycle",)),
        (("--stop-signal", "worker=NOPE"), ("unknown signal",)),
    ],
)
def test_bad_lifecycle_settings(
    lifecycle_project: Path, tmp_path: Path, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    r = export(lifecycle_project, "compose", str(tmp_path / "out"), *args)
    assert r.rc != 0
    assert_no_traceback(r)
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("corral: error: "), r.err
    for fragment in fragments:
        assert fragment in lines[0], r.err
    assert not (tmp_path / "out").exists()
