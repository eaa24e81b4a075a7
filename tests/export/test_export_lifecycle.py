"""Lifecycle settings in the exports: the structure each format gets from the
lifecycle scenario of `hostile.py` (release, one-shot, after, readiness probes,
restart tables, stop signals and timeouts), the export defaults, the simple
command check that decides on `exec`, and the readiness checks as shell
commands, run with the real `sh`.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from string import Template
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from corral.errors import CorralError
from corral.export import File, render
from corral.export.commands import expanding_word, probe_command, shell_script
from corral.shell import exec_command, simple_command
from corral.specs import Policy, ProbeSpec, RestartPolicy
from tests.export.hostile import context, lifecycle_context
from tests.export.tools import module

yaml = module("yaml")


def by_path(files: list[File]) -> dict[str, str]:
    return {f.path: f.content for f in files}


def lines_of(unit: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith(key + "=")]


# -- systemd -------------------------------------------------------------------


def test_systemd_lifecycle() -> None:
    units = by_path(render("systemd", lifecycle_context()))
    release = units["my_app-release.1.service"]
    assert lines_of(release, "Type") == ["oneshot"]
    assert lines_of(release, "RemainAfterExit") == ["yes"]
    assert lines_of(release, "Restart") == ["no"]  # a one-shot's default
    assert lines_of(release, "TimeoutStartSec") == ["300"]  # [release] timeout
    assert lines_of(release, "After") == lines_of(release, "Requires") == ["my_app-db.1.service"]

    migrate = units["my_app-migrate.1.service"]
    assert lines_of(migrate, "Type") == ["oneshot"]
    assert lines_of(migrate, "Restart") == ["on-failure"]
    assert lines_of(migrate, "StartLimitBurst") == ["3"]  # limit 2 restarts + the start
    assert lines_of(migrate, "TimeoutStartSec") == ["120"]

    web = units["my_app-web.2.service"]
    deps = "my_app-migrate.1.service my_app-cache.1.service my_app-release.1.service"
    assert lines_of(web, "After") == lines_of(web, "Requires") == [deps]
    assert "Type" not in web
    assert lines_of(web, "Restart") == ["on-failure"]  # the export default
    assert "RestartSec" not in web and "StartLimit" not in web  # no restart table given
    assert lines_of(web, "KillSignal") == ["SIGQUIT"]
    assert lines_of(web, "TimeoutStopSec") == ["12500ms"]
    assert lines_of(web, "TimeoutStartSec") == ["50"]  # the probe's 45 s + the wait's grace
    (post,) = lines_of(web, "ExecStartPost")
    assert post.startswith('/bin/sh -c "deadline=$$(($$(date +%%s) + 45))')
    assert "until { if command -v curl" in post
    assert "http://127.0.0.1:$${PORT}/health?full=1" in post
    assert post.endswith('\\nsleep 0.5; done"')

    worker = units["my_app-worker.1.service"]
    assert lines_of(worker, "After") == ["my_app-db.1.service my_app-release.1.service"]
    assert lines_of(worker, "Restart") == ["on-failure"]
    assert lines_of(worker, "RestartSec") == ["2"]
    assert lines_of(worker, "StartLimitIntervalSec") == ["60"]
    assert lines_of(worker, "StartLimitBurst") == ["6"]
    assert lines_of(worker, "KillSignal") == ["SIGINT"]
    assert lines_of(worker, "TimeoutStopSec") == ["30"]
    # `FOO=1 celery ...` cannot be exec'd: every process of the unit gets the signal
    assert lines_of(worker, "ExecStart") == [
        '/bin/sh -c "FOO=1 celery -A app worker --concurrency 2"'
    ]
    assert lines_of(worker, "KillMode") == ["control-group"]
    assert lines_of(web, "KillMode") == ["mixed"]

    db = units["my_app-db.1.service"]
    assert "After" not in db
    (post,) = lines_of(db, "ExecStartPost")
    assert "until { pg_isready -q -p $$PORT\\n} >/dev/null 2>&1" in post
    assert post.endswith('\\nsleep 1; done"')
    clock = units["my_app-clock.1.service"]
    assert "ExecStartPost" not in clock  # log: probes cannot run outside corral
    assert "# readiness probe log:" in clock
    assert lines_of(clock, "Restart") == ["always"]


def test_systemd_oneshot_cannot_restart_always() -> None:
    toml = "[processes.migrate]\noneshot = true\nrestart = 'always'\n"
    unit = by_path(render("systemd", lifecycle_context(toml=toml)))["my_app-migrate.1.service"]
    assert lines_of(unit, "Restart") == ["on-failure"]
    assert "restart = always: systemd cannot restart a completed Type=oneshot" in unit


def test_systemd_dependency_scaled_to_zero_is_not_waited_for() -> None:
    units = by_path(render("systemd", lifecycle_context(counts={"migrate": 0, "cache": 2})))
    web = units["my_app-web.1.service"]
    assert lines_of(web, "After") == [
        "my_app-cache.1.service my_app-cache.2.service my_app-release.1.service"
    ]


def test_no_release_rule_and_plain_procfile_defaults() -> None:
    """Without settings each type keeps the export defaults of a plain Procfile."""
    units = by_path(render("systemd", context()))
    for unit in units.values():
        assert "Type=" not in unit and "After=" not in unit and "KillSignal=" not in unit
    ctx = lifecycle_context(toml="", policies={})
    release = by_path(render("systemd", ctx))["my_app-release.1.service"]
    assert "Type=oneshot" not in release  # policies={}: no release rule applied


# -- compose ---------------------------------------------------------------------


def compose_services(**kw: Any) -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(
        render("compose", lifecycle_context(**kw))[0].content
    )["services"]
    return services


def test_compose_lifecycle() -> None:
    services = compose_services()
    assert services["release"]["restart"] == "no"
    assert services["release"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "on-failure"
    assert services["migrate"]["depends_on"] == {
        "release": {"condition": "service_completed_successfully"}
    }
    assert services["web"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "cache": {"condition": "service_healthy"},
        "release": {"condition": "service_completed_successfully"},
    }
    assert services["worker"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "release": {"condition": "service_completed_successfully"},
    }
    # clock waits for worker, whose file probe is a healthcheck
    assert services["clock"]["depends_on"]["worker"] == {"condition": "service_healthy"}
    assert services["db"]["healthcheck"] == {
        "test": ["CMD-SHELL", "pg_isready -q -p $$PORT"],
        "interval": "1s",
        "retries": 30,
    }
    web_check = services["web"]["healthcheck"]
    assert web_check["test"][0] == "CMD-SHELL"
    assert (
        'curl -fsS -o /dev/null "http://127.0.0.1:$${PORT}/health?full=1"' in web_check["test"][1]
    )
    assert (web_check["interval"], web_check["retries"]) == ("500ms", 90)
    assert services["cache"]["healthcheck"]["test"][1].startswith(
        'if command -v nc >/dev/null 2>&1; then nc -z -w 2 127.0.0.1 "$${PORT}";'
    )
    assert services["worker"]["healthcheck"]["test"] == ["CMD-SHELL", 'test -e "/tmp/worker ready"']
    assert "healthcheck" not in services["clock"]  # log: probe
    assert services["worker"]["stop_signal"] == "SIGINT"
    assert services["worker"]["stop_grace_period"] == "30s"
    assert services["web"]["stop_signal"] == "SIGQUIT"
    assert services["web"]["stop_grace_period"] == "12500ms"
    assert services["db"]["stop_grace_period"] == "20s"
    assert services["release"]["stop_signal"] == "SIGTERM"
    assert services["clock"]["restart"] == "always"
    assert services["worker"]["command"][2] == "FOO=1 celery -A app worker --concurrency 2"
    header = render("compose", lifecycle_context())[0].content.split("\nname:")[0]
    assert "# clock: a log: readiness probe cannot be a healthcheck" in header


def test_compose_a_log_probe_dependency_is_only_started() -> None:
    toml = "[processes.web]\nready = 'log:listening'\n[processes.worker]\nafter = ['web']\n"
    services = compose_services(toml=toml)
    assert services["worker"]["depends_on"]["web"] == {"condition": "service_started"}


def test_compose_oneshot_always_is_on_failure() -> None:
    toml = "[processes.migrate]\noneshot = true\nrestart = 'always'\n"
    assert compose_services(toml=toml)["migrate"]["restart"] == "on-failure"


# -- kubernetes ------------------------------------------------------------------


def k8s_objects(**kw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    docs = yaml.safe_load_all(render("kubernetes", lifecycle_context(**kw))[0].content)
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def container(obj: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = obj["spec"]["template"]["spec"]["containers"][0]
    return result


def test_kubernetes_jobs_for_oneshots() -> None:
    objects = k8s_objects()
    kinds = sorted(objects)
    assert kinds == [
        ("ConfigMap", "my-app-env"),
        ("Deployment", "my-app-cache"),
        ("Deployment", "my-app-clock"),
        ("Deployment", "my-app-db"),
        ("Deployment", "my-app-web"),
        ("Deployment", "my-app-worker"),
        ("Job", "my-app-migrate"),
        ("Job", "my-app-release"),
        ("Service", "my-app-web"),
    ]
    release = objects[("Job", "my-app-release")]
    assert release["apiVersion"] == "batch/v1"
    spec = release["spec"]
    assert (spec["parallelism"], spec["completions"], spec["backoffLimit"]) == (1, 1, 0)
    assert spec["activeDeadlineSeconds"] == 300
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert "selector" not in spec
    migrate = objects[("Job", "my-app-migrate")]["spec"]
    assert migrate["backoffLimit"] == 2
    assert migrate["activeDeadlineSeconds"] == 120
    assert migrate["template"]["spec"]["restartPolicy"] == "OnFailure"
    assert container(objects[("Job", "my-app-migrate")])["command"][2] == (
        'cd db && ./load-fixtures.sh "$$DATABASE_URL"'
    )


def test_kubernetes_readiness_probes() -> None:
    objects = k8s_objects()
    web = container(objects[("Deployment", "my-app-web")])
    # `release` takes no port slot: db 5000, migrate 5100, cache 5200, web 5300
    assert web["readinessProbe"] == {
        "httpGet": {"path": "/health?full=1", "port": 5300},
        "periodSeconds": 1,
    }
    cache = container(objects[("Deployment", "my-app-cache")])
    assert cache["readinessProbe"] == {"tcpSocket": {"port": 5200}, "periodSeconds": 1}
    db = container(objects[("Deployment", "my-app-db")])
    # no `$$` here: Kubernetes does not expand $(VAR) in probe commands
    assert db["readinessProbe"] == {
        "exec": {"command": ["/bin/sh", "-c", "pg_isready -q -p $PORT"]},
        "periodSeconds": 1,
    }
    worker = container(objects[("Deployment", "my-app-worker")])
    assert worker["readinessProbe"]["exec"]["command"][2] == 'test -e "/tmp/worker ready"'
    assert "readinessProbe" not in container(objects[("Deployment", "my-app-clock")])
    grace = {
        name: obj["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        for (kind, name), obj in objects.items()
        if kind in ("Deployment", "Job")
    }
    assert grace["my-app-worker"] == 30
    assert grace["my-app-web"] == 13
    assert grace["my-app-db"] == 20
    assert grace["my-app-release"] == 5


@pytest.mark.parametrize(
    ("probe", "expected"),
    [
        ("tcp:db:5432", {"tcpSocket": {"port": 5432, "host": "db"}}),
        ("tcp:localhost:$PORT", {"tcpSocket": {"port": 5300}}),
        ("tcp:[::1]:$PORT", {"tcpSocket": {"port": 5300}}),
        (
            "http://example.com:8080/up",
            {"httpGet": {"path": "/up", "port": 8080, "host": "example.com"}},
        ),
        (
            "http://example.com/up?a=1",
            {"httpGet": {"path": "/up?a=1", "port": 80, "host": "example.com"}},
        ),
        ("http:db:$PORT/x", {"httpGet": {"path": "/x", "port": 5300, "host": "db"}}),
        ("http:$PORT", {"httpGet": {"path": "/", "port": 5300}}),
        ("http:$HEALTH_PORT/x", {"httpGet": {"path": "/x", "port": 9000}}),  # from .env
        ("tcp:$UNKNOWN", {"exec": {"command": ["/bin/sh", "-c", "x"]}}),
    ],
)
def test_kubernetes_probe_targets(probe: str, expected: dict[str, Any]) -> None:
    toml = f"[processes.web]\nready = {probe!r}\n"
    web = container(
        k8s_objects(toml=toml, env={"HEALTH_PORT": "9000"})[("Deployment", "my-app-web")]
    )
    action = {k: v for k, v in web["readinessProbe"].items() if k != "periodSeconds"}
    if "exec" in expected:  # a variable only the container knows: checked by the shell
        assert action["exec"]["command"][:2] == ["/bin/sh", "-c"]
        assert '"${UNKNOWN}"' in action["exec"]["command"][2]
    else:
        assert action == expected


def test_kubernetes_header_notes() -> None:
    text = render("kubernetes", lifecycle_context())[0].content
    header = text.split("\n---\n")[0]
    assert "# Start order, not exported" in header
    assert "web after migrate, cache, release" in header
    assert "worker SIGINT" in header and "web SIGQUIT" in header
    assert "log: readiness probes, not exported (no equivalent): clock." in header
    assert "Jobs cannot be changed once created" in header
    plain = render("kubernetes", context())[0].content.split("\n---\n")[0]
    assert "not exported" not in plain and "Jobs" not in plain


# -- supervisord and runit ---------------------------------------------------------


def test_supervisord_lifecycle_lines() -> None:
    conf = render("supervisord", lifecycle_context())[0].content
    sections = {block.split("]", 1)[0]: block for block in conf.split("\n[program:")[1:]}
    release = sections["my_app-release-1"]
    assert "autorestart=false\n" in release and "startsecs=0\n" in release
    worker = sections["my_app-worker-1"]
    assert "stopsignal=INT\n" in worker and "stopwaitsecs=30\n" in worker
    assert "startretries=5\n" in worker
    assert "priority=100\n" in sections["my_app-db-1"]
    # a plain Procfile keeps supervisord's defaults
    plain = render("supervisord", context())[0].content
    assert plain.count("priority=999\n") == 4 and "stopsignal=TERM" in plain


def test_runit_lifecycle_files() -> None:
    files = by_path(render("runit", lifecycle_context()))
    assert 'exec kill -s INT -- "-$pid"\n' in files["my_app-worker-1/control/t"]
    assert 'exec kill -s QUIT -- "-$pid"\n' in files["my_app-web-2/control/t"]
    assert 'exec kill -s TERM -- "-$pid"\n' in files["my_app-release-1/control/t"]
    assert 'exec kill -s KILL -- "-$pid"\n' in files["my_app-worker-1/control/k"]
    assert files["my_app-release-1/finish"].endswith("exec sv down .\n")  # one-shot: stays down
    assert 'if [ "$1" = 0 ]; then exec sv down .; fi' in files["my_app-migrate-1/finish"]
    assert "exit 0" in files["my_app-clock-1/finish"]  # always
    assert "sv -w 30 force-stop" in files["my_app-worker-1/run"]
    assert "sv -w 13 force-stop" in files["my_app-web-1/run"]  # 12.5 s: sv takes whole seconds
    assert "; FOO=1 celery -A app worker --concurrency 2'\n" in files["my_app-worker-1/run"]


# -- ExportContext checks ------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"policies": {"nope": Policy()}}, "unknown process 'nope'"),
        ({"restart_given": frozenset({"nope"})}, "unknown process 'nope'"),
        ({"policies": {"web": Policy(restart=RestartPolicy("sometimes"))}}, "restart policy"),
        ({"policies": {"web": Policy(after=("web",))}}, "bad dependency 'web'"),
        ({"policies": {"web": Policy(after=("nope",))}}, "bad dependency 'nope'"),
        ({"policies": {"web": Policy(stop_signal=999)}}, "unknown stop signal"),
        ({"policies": {"web": Policy(stop_timeout=-1)}}, "bad stop timeout"),
        ({"policies": {"web": Policy(ready=ProbeSpec("tcp", "1", 0))}}, "interval"),
        ({"policies": {"web": Policy(ready=ProbeSpec("tcp", "db:x"))}}, "port 'x'"),
        ({"policies": {"web": Policy(ready=ProbeSpec("http", "https://h/"))}}, "https"),
        ({"policies": {"web": Policy(ready=ProbeSpec("file", "a\0b"))}}, "NUL"),
    ],
)
@pytest.mark.parametrize("fmt", ["systemd", "supervisord", "runit", "compose", "kubernetes"])
def test_bad_policies_are_corral_errors(fmt: str, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CorralError, match=message):
        render(fmt, context(**overrides))


@pytest.mark.parametrize("fmt", ["systemd", "supervisord", "runit", "compose", "kubernetes"])
def test_a_dependency_cycle_is_an_error(fmt: str) -> None:
    policies = {"web": Policy(after=("worker",)), "worker": Policy(after=("web",))}
    with pytest.raises(CorralError, match="dependency cycle: web -> worker -> web"):
        render(fmt, context(policies=policies))


# -- simple commands and exec --------------------------------------------------------

SIMPLE = [
    "python3 -m http.server $PORT",
    "gunicorn app:app --bind 0.0.0.0:$PORT --log-file -",
    "cmd >>log 2>&1",
    "cmd >|log <in 3<&0",
    "cmd # a comment; with & operators",
    "'my prog' 'a;b' \"c|d\" e\\;f",
    'echo "${X:-y}" ~ *.py [ab]',
    "a#b c",
    "cmd arg=1 --flag=x",
    "env FOO=1 cmd",
    "/usr/bin/env",
    "[ -f x ]",
]
COMPOUND = [
    "cd x && cmd",
    "FOO=1 cmd",
    "FOO='a b' cmd",
    "X+=1 cmd",
    "a; b",
    "a | b",
    "a || b",
    "a & b",
    "a&",
    "cmd &>log",
    "(a)",
    "{ a; }",
    "if true; then a; fi",
    "while :; do a; done",
    "! a",
    "exec cmd",
    "cd x",
    "export X=1",
    ". ./env",
    "source env",
    '"cd" x',
    "set -e",
    "trap 'x' TERM",
    "echo $(date)",
    'echo "$(date)"',
    "echo `date`",
    "a\nb",
    "a \\\nb",
    ">log cmd",
    "2>log cmd",
    "cmd>log",
    "a 'unterminated",
    'a "unterminated',
    "",
    "   ",
    "# only a comment",
    "cmd # comment\nother",
]


@pytest.mark.parametrize("command", SIMPLE)
def test_simple_commands_are_execd(command: str) -> None:
    assert simple_command(command)
    assert shell_script(command) == f"exec {command}"
    assert exec_command(command) == f"exec {command}"


@pytest.mark.parametrize("command", COMPOUND)
def test_other_commands_run_as_written(command: str) -> None:
    assert not simple_command(command)
    assert shell_script(command, {"K": "v w"}) == f"export K='v w'; {command}"


def sh(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `script` with /bin/sh in a scratch directory (generated commands
    redirect to files); output decoded as is (no newline translation)."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            ["/bin/sh", "-c", script],
            capture_output=True,
            timeout=10,
            cwd=scratch,
            env={"PATH": os.environ["PATH"], **(env or {})},
        )
    return subprocess.CompletedProcess(
        result.args,
        result.returncode,
        result.stdout.decode("utf-8", "surrogateescape"),
        result.stderr.decode("utf-8", "surrogateescape"),
    )


ARG_ALPHABET = st.sampled_from(
    [*"ab ;&|<>()'\"\\$`#*?=~{}!\t\n", "$X", "${X}", "2>&1", "&&", "$(echo", "%"]
)


@given(st.lists(ARG_ALPHABET, max_size=8).map("".join))
@settings(max_examples=150, deadline=None)
def test_exec_changes_nothing_but_the_process(args: str) -> None:
    """Whenever `exec` is added, the shell runs the same command with the same
    words, output and exit status as without it."""
    command = f"printf '<%s>' {args}"
    assume("$$" not in args)  # the shell's pid: differs from run to run anyway
    if not simple_command(command):
        return
    plain = sh(command, {"X": "x y"})
    execd = sh(exec_command(command), {"X": "x y"})
    assert (execd.returncode, execd.stdout) == (plain.returncode, plain.stdout)


# -- readiness checks run by the real shell --------------------------------------------


@given(st.text(alphabet=st.characters(blacklist_characters="\0", max_codepoint=0x7F), max_size=30))
@settings(max_examples=150, deadline=None)
def test_expanding_word_expands_like_corral_start(text: str) -> None:
    """The shell gives the probe target that `corral start` would build with
    `string.Template.safe_substitute` from the environment (for defined names)."""
    env = {"PORT": "5000", "X": "a b$'\"", "Y_1": ""}
    names = {m.group("named") or m.group("braced") for m in Template.pattern.finditer(text)}
    if not names - {None} <= set(env):
        return  # an unset variable: the shell makes it empty, corral leaves `$NAME`
    result = sh(f"printf '%s' {expanding_word(text)}", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == Template(text).safe_substitute(env)


@pytest.fixture
def http_server() -> Iterator[int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probe_commands_pass_and_fail_for_real(tmp_path: Path, http_server: int) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    open_port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, not listening: refused
    (tmp_path / "ready file").write_text("")
    env = {"PORT": str(http_server), "OPEN": str(open_port), "DIR": str(tmp_path)}
    cases = [
        (ProbeSpec("tcp", "$OPEN"), 0),
        (ProbeSpec("tcp", f"127.0.0.1:{closed_port}"), 1),
        (ProbeSpec("http", "$PORT/ok"), 0),
        (ProbeSpec("http", "$PORT/fail"), 1),
        (ProbeSpec("http", f"http://127.0.0.1:{http_server}/ok"), 0),
        (ProbeSpec("file", "${DIR}/ready file"), 0),
        (ProbeSpec("file", "${DIR}/missing"), 1),
        (ProbeSpec("cmd", "test -d $DIR"), 0),
        (ProbeSpec("cmd", "false"), 1),
    ]
    try:
        for probe, ok in cases:
            command = probe_command(probe)
            assert command is not None
            result = sh(command, env)
            assert (result.returncode == 0) == (ok == 0), (str(probe), result.stderr)
    finally:
        listener.close()
        closed.close()
    assert probe_command(ProbeSpec("log", "ready")) is None


def test_tcp_probe_without_nc_uses_bash(tmp_path: Path) -> None:
    """No `nc` on PATH (most slim images): bash's /dev/tcp does the check."""
    bash = Path("/bin/bash")
    if not bash.exists():
        pytest.skip("no bash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash",):
        (bin_dir / tool).symlink_to(bash)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    try:
        command = probe_command(ProbeSpec("tcp", "$PORT"))
        assert command is not None
        result = subprocess.run(
            ["/bin/sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=10,
            env={"PATH": str(bin_dir), "PORT": str(port)},
        )
        assert result.returncode == 0, result.stderr
    finally:
        listener.close()
