"""The export API: formats and aliases, writing, input errors, ports, names,
templates, restart settings, and the structure and values of each format.

Escaping is checked against the real parsers where they are Python (supervisor's
config and environment parsers, PyYAML) with hypothesis-generated text; the
shell, systemd and runit sides are checked by the real runs in test_export_run.
"""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import formation
from corral.errors import CorralError
from corral.export import FORMATS, ExportContext, File, render, write, yaml_writer
from corral.export import supervisord as sv
from corral.export.plan import plan
from corral.export.runit import envdir_content
from corral.procfile import Entry
from corral.specs import Policy, RestartPolicy
from tests.export.hostile import EXTRA, HOSTILE, context
from tests.export.tools import module

yaml = module("yaml")

EXPECTED_ENV = {k: v for k, v in {**HOSTILE, **EXTRA}.items() if k != "PORT"}
DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def by_path(files: list[File]) -> dict[str, File]:
    return {f.path: f for f in files}


# -- formats, render, write ----------------------------------------------------


def test_formats_and_aliases() -> None:
    assert set(FORMATS) == {
        "systemd",
        "supervisord",
        "runit",
        "compose",
        "docker-compose",
        "kubernetes",
        "k8s",
    }
    ctx = context()
    assert render("docker-compose", ctx) == render("compose", ctx)
    assert render("k8s", ctx) == render("kubernetes", ctx)


def test_unknown_format_lists_the_valid_ones() -> None:
    with pytest.raises(CorralError) as err:
        render("upstart", context())
    message = str(err.value)
    assert "'upstart'" in message
    for name in ("systemd", "supervisord", "runit", "compose", "docker-compose", "k8s"):
        assert name in message


def test_write_creates_location_subdirs_and_modes(tmp_path: Path) -> None:
    location = tmp_path / "a" / "b"
    files = render("runit", context())
    write(files, location)
    run = location / "my_app-web-1" / "run"
    assert run.read_text() == by_path(files)["my_app-web-1/run"].content
    # the hostile .env has values an envdir cannot hold: exported in run, so owner-only
    assert stat.S_IMODE(run.stat().st_mode) == 0o700
    assert stat.S_IMODE((location / "my_app-web-1/finish").stat().st_mode) == 0o755
    # PORT is set by the hostile .env here: a .env value, so owner-only; PS is not
    assert stat.S_IMODE((location / "my_app-web-1/env/PORT").stat().st_mode) == 0o600
    assert stat.S_IMODE((location / "my_app-web-1/env/PS").stat().st_mode) == 0o644
    assert (location / "my_app-web-1/env/NEWLINES").read_bytes() == b"line1\0line2\0\0\n"
    # writing again replaces the files and leaves no temporary files behind
    write(files, location)
    assert not [p for p in location.rglob(".*corral-tmp")]


def test_write_location_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.write_text("x")
    with pytest.raises(CorralError, match="not a directory"):
        write([File("a.conf", "x")], target)


def test_write_location_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("x")
    with pytest.raises(CorralError):
        write([File("a.conf", "x")], tmp_path / "out" / "sub")


def test_write_refuses_paths_outside_location(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write([File("../evil", "x")], tmp_path / "out")


# -- input errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"env": {"BAD-KEY": "x"}}, "cannot export variable 'BAD-KEY'"),
        ({"env": {"1X": "x"}}, "cannot export variable '1X'"),
        ({"env": {"K": "a\0b"}}, "NUL"),
        ({"app": "my app"}, "app name"),
        ({"app": ""}, "app name"),
        ({"user": "bad user"}, "user"),
        ({"counts": {"nope": 2}}, "unknown process 'nope'"),
        ({"counts": {"web": -1}}, "0 or more"),
        ({"timeout": -1.0}, "timeout"),
        ({"shell": "/bin/my shell"}, "shell"),
    ],
)
@pytest.mark.parametrize("fmt", ["systemd", "supervisord", "runit", "compose", "kubernetes"])
def test_bad_input_is_a_corral_error(fmt: str, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(CorralError, match=re.escape(message)):
        render(fmt, context(**overrides))


def test_names_that_sanitise_alike_are_an_error() -> None:
    ctx = context(procfile="foo_bar: a\nfoo-bar: b\n", counts={})
    for fmt in ("compose", "kubernetes"):
        with pytest.raises(CorralError, match="both become"):
            render(fmt, ctx)


# -- ports, counts, environment --------------------------------------------------


def test_per_instance_ports_and_names() -> None:
    files = by_path(render("systemd", context()))
    expected = {
        "my_app-web.1.service": ("5000", "web.1"),
        "my_app-web.2.service": ("5001", "web.2"),
        "my_app-worker.1.service": ("5100", "worker.1"),
        "my_app-foo_bar.1.service": ("5200", "foo_bar.1"),
    }
    assert set(files) == {"my_app.target", *expected}
    for unit, (port, ps) in expected.items():
        text = files[unit].content
        assert f'Environment="PORT={port}"\n' in text
        assert f'Environment="PS={ps}"\n' in text
        assert f'Environment="HONCHO_PROCESS_NAME={ps}"\n' in text
        assert "1234" not in text  # PORT from .env is overridden
        assert "PartOf=my_app.target\n" in text
    target = files["my_app.target"].content
    assert "Wants=" + " ".join(expected) + "\n" in target


RELEASE_FIRST = "release: ./migrate\nweb: ./serve\nworker: ./work\n"


def start_envs(ctx: ExportContext) -> dict[str, dict[str, str]]:
    """What `corral start` gives each instance, with the .env values as its base."""
    specs = formation.expand(ctx.entries, env=ctx.env, base_port=ctx.base_port, counts=ctx.counts)
    return {spec.name: dict(spec.env) for spec in specs}


def test_every_format_gives_the_ports_and_environment_of_corral_start() -> None:
    """`release` first takes no port slot, under `corral start` and in every format."""
    ctx = context(
        procfile=RELEASE_FIRST,
        counts={"web": 2, "worker": 2},
        base_port=7000,
        env={"FOO": "bar", "PORT": "1"},
    )
    expected = start_envs(ctx)
    assert {n: e["PORT"] for n, e in expected.items()} == {
        "release.1": "7000",
        "web.1": "7000",
        "web.2": "7001",
        "worker.1": "7100",
        "worker.2": "7101",
    }
    systemd = by_path(render("systemd", ctx))
    runit = by_path(render("runit", ctx))
    conf = render("supervisord", ctx)[0].content
    for name, env in expected.items():
        kind, num = name.split(".")
        unit = systemd[f"my_app-{kind}.{num}.service"].content
        assert dict(re.findall(r'^Environment="([^=]*)=(.*)"$', unit, re.M)) == env
        folder = f"my_app-{kind}-{num}/env/"
        assert {
            p.removeprefix(folder): f.content.removesuffix("\n")
            for p, f in runit.items()
            if p.startswith(folder)
        } == env
        line = conf.split(f"[program:my_app-{kind}-{num}]\n")[1].split("environment=")[1]
        parsed = module("supervisor.datatypes").dict_of_key_value_pairs(line.split("\n")[0])
        assert parsed == env
    compose = yaml.safe_load(render("compose", ctx)[0].content)["services"]
    docs = list(yaml.safe_load_all(render("kubernetes", ctx)[0].content))
    k8s = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["env"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }
    for kind in ("release", "web", "worker"):
        port = expected[f"{kind}.1"]["PORT"]
        assert compose[kind]["environment"]["PORT"] == port
        assert k8s[f"my-app-{kind}"] == [{"name": "PORT", "value": port}]
    assert compose["web"]["ports"] == ["7000-7001:7000"]


NAMES = ("release", "web", "worker", "clock")


@given(
    names=st.lists(st.sampled_from(NAMES), min_size=1, unique=True),
    counts=st.lists(st.integers(0, 3), min_size=len(NAMES), max_size=len(NAMES)),
    base_port=st.integers(1, 60_000),
    env=st.dictionaries(
        st.sampled_from(["PORT", "PS", "HONCHO_PROCESS_NAME", "A", "B"]),
        st.text("ab$ ", max_size=3),
    ),
)
def test_the_plan_is_the_formation_of_corral_start(
    names: list[str], counts: list[int], base_port: int, env: dict[str, str]
) -> None:
    entries = [Entry(name, f"./{name}", n) for n, name in enumerate(names, 1)]
    ctx = context(
        entries=entries, counts=dict(zip(names, counts, strict=False)), base_port=base_port, env=env
    )
    exported = plan(ctx)
    specs = formation.expand(entries, env=env, base_port=base_port, counts=ctx.counts)
    assert [(i.name, i.kind.name, i.port) for i in exported.instances] == [
        (s.name, s.kind, s.port) for s in specs
    ]
    for inst, spec in zip(exported.instances, specs, strict=True):
        assert dict(inst.env) == dict(spec.env)
        assert list(inst.env)[:3] == ["PORT", "PS", "HONCHO_PROCESS_NAME"]
        assert inst.name == f"{inst.kind.name}.{inst.num}"
    for t in exported.types:  # a type's port is its first instance's, even scaled to 0
        one = formation.expand(
            entries, env={}, base_port=base_port, counts={t.name: 1}, selected=[t.name]
        )
        assert t.port == one[0].port


def test_runit_layout_and_envdir() -> None:
    files = by_path(render("runit", context(counts={"web": 1, "worker": 0, "foo_bar": 0})))
    dirs = {p.split("/")[0] for p in files}
    assert dirs == {"my_app-web-1", "my_app-clock-1"}  # clock: 1 by default here
    for name in ("run", "finish", "log/run"):
        # run exports the hostile values an envdir cannot hold: owner-only
        assert files[f"my_app-web-1/{name}"].mode == (0o700 if name == "run" else 0o755)
        assert files[f"my_app-web-1/{name}"].content.startswith("#!/bin/sh\n")
    assert files["my_app-web-1/env/PORT"].content == "5000\n"
    assert files["my_app-web-1/env/PS"].content == "web.1\n"
    assert files["my_app-web-1/env/EMPTY"].content == "\n"
    # chpst trims trailing blanks: those values are exported by run instead
    assert "my_app-web-1/env/TRAILING" not in files
    run = files["my_app-web-1/run"].content
    assert "export TRAILING='trailing space '\n" in run
    assert "exec chpst -P -u my_app -e ./env /bin/sh -c " in run


@given(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=40))
def test_runit_envdir_encoding_matches_chpst(value: str) -> None:
    content = envdir_content(value)
    if value.endswith((" ", "\t")):
        assert content is None
        return
    assert content is not None
    # chpst -e: first line, trailing blanks trimmed, NUL -> newline
    first = content.split("\n", 1)[0].rstrip(" \t")
    assert first.replace("\0", "\n") == value


def test_counts_zero_and_replicas() -> None:
    ctx = context(counts={"web": 3, "worker": 0})
    assert not [f for f in render("systemd", ctx) if "worker" in f.path]
    assert "worker" not in render("supervisord", ctx)[0].content.split("[group:")[1]
    compose = yaml.safe_load(render("compose", ctx)[0].content)
    assert compose["services"]["web"]["deploy"] == {"mode": "replicated", "replicas": 3}
    assert compose["services"]["worker"]["deploy"]["replicas"] == 0
    assert compose["services"]["web"]["ports"] == ["5000-5002:5000"]
    docs = list(yaml.safe_load_all(render("kubernetes", ctx)[0].content))
    replicas = {
        d["metadata"]["name"]: d["spec"]["replicas"] for d in docs if d["kind"] == "Deployment"
    }
    assert replicas == {"my-app-web": 3, "my-app-worker": 0, "my-app-foo-bar": 1, "my-app-clock": 1}


def test_supervisord_without_instances_has_no_group() -> None:
    ctx = context(counts={"web": 0, "worker": 0, "foo_bar": 0, "clock": 0})
    assert "[group:" not in render("supervisord", ctx)[0].content


# -- compose ---------------------------------------------------------------------


def unescape_dollars(text: str) -> str:
    return text.replace("$$", "$")


def test_compose_structure_and_values() -> None:
    doc = yaml.safe_load(render("compose", context())[0].content)
    assert "version" not in doc
    assert doc["name"] == "my-app"
    services = doc["services"]
    assert list(services) == ["web", "worker", "foo-bar", "clock"]
    ports = {"web": "5000", "worker": "5100", "foo-bar": "5200", "clock": "5300"}
    for name, service in services.items():
        assert service["build"] == "/srv/my_app"
        assert "image" not in service
        assert service["env_file"] == ["/srv/my_app/.env"]
        env = {k: unescape_dollars(v) for k, v in service["environment"].items()}
        assert env == {"PORT": ports[name], **EXPECTED_ENV}
        assert service["restart"] == "on-failure"
        assert service["stop_signal"] == "SIGTERM"
        assert service["stop_grace_period"] == "5s"
        assert service["command"][:2] == ["/bin/sh", "-c"]
        # simple commands are exec'd; a list or a pipeline runs under the shell
        assert service["command"][2].startswith("exec ") == (name in ("web", "clock"))
    assert services["web"]["command"][2] == "exec python3 -m http.server $$PORT"
    assert services["web"]["deploy"]["replicas"] == 2
    assert "ports" not in services["worker"]


def test_compose_image_and_fractional_timeout() -> None:
    doc = yaml.safe_load(render("compose", context(image="reg/app:1", timeout=2.5))[0].content)
    web = doc["services"]["web"]
    assert web["image"] == "reg/app:1"
    assert "build" not in web
    assert web["stop_grace_period"] == "2500ms"


# -- kubernetes ------------------------------------------------------------------


def k8s_docs(ctx: ExportContext) -> list[dict[str, object]]:
    files = render("kubernetes", ctx)
    assert [f.path for f in files] == [f"{ctx.app}.yaml"]
    return list(yaml.safe_load_all(files[0].content))


def test_kubernetes_structure_names_and_values() -> None:
    docs = k8s_docs(context())
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]  # type: ignore[index]
    assert kinds == [
        ("ConfigMap", "my-app-env"),
        ("Deployment", "my-app-web"),
        ("Deployment", "my-app-worker"),
        ("Deployment", "my-app-foo-bar"),
        ("Deployment", "my-app-clock"),
        ("Service", "my-app-web"),
    ]
    for _, name in kinds:
        assert DNS_1123.fullmatch(name)
    configmap, web = docs[0], docs[1]
    assert configmap["data"] == EXPECTED_ENV
    container = web["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["name"] == "web"
    assert container["image"] == "my-app:latest"
    assert container["env"] == [{"name": "PORT", "value": "5000"}]
    assert container["envFrom"] == [{"configMapRef": {"name": "my-app-env"}}]
    assert container["ports"] == [{"name": "http", "containerPort": 5000}]
    assert container["command"] == ["/bin/sh", "-c", "exec python3 -m http.server $$PORT"]
    foo = docs[3]["spec"]["template"]["spec"]  # type: ignore[index]
    assert foo["containers"][0]["name"] == "foo-bar"
    assert foo["terminationGracePeriodSeconds"] == 5
    service = docs[5]["spec"]  # type: ignore[index]
    assert service["ports"] == [{"name": "http", "port": 5000, "targetPort": 5000}]
    assert service["selector"] == {
        "app.kubernetes.io/name": "my-app",
        "app.kubernetes.io/component": "web",
    }


def test_kubernetes_secret_image_and_no_env() -> None:
    docs = k8s_docs(context(secret=True, image="reg/app:2"))
    secret = docs[0]
    assert secret["kind"] == "Secret"
    assert secret["type"] == "Opaque"
    assert secret["stringData"] == EXPECTED_ENV
    container = docs[1]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["envFrom"] == [{"secretRef": {"name": "my-app-env"}}]
    assert container["image"] == "reg/app:2"
    docs = k8s_docs(context(env={}))
    assert [d["kind"] for d in docs] == ["Deployment"] * 4 + ["Service"]
    assert "envFrom" not in docs[0]["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]


def test_kubernetes_service_name_starts_with_a_letter() -> None:
    docs = k8s_docs(context(app="9lives"))
    # the file name keeps the app name; resource names are sanitised
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}  # type: ignore[index]
    assert ("Deployment", "9lives-web") in names
    assert ("Service", "svc-9lives-web") in names


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_yaml_quote_round_trips_through_pyyaml(text: str) -> None:
    assert yaml.safe_load(yaml_writer.quote(text)) == text
    assert yaml.safe_load(yaml_writer.dump({text: [text, {"k": text}]})) == {
        text: [text, {"k": text}]
    }


# -- supervisord escaping, checked with supervisor's own parsers -----------------


def parse_value(line_value: str) -> str:
    """What supervisor's config parser makes of `key=<line_value>` (before %)."""
    parser = module("supervisor.options").UnhosedConfigParser()
    parser.read_string(f"[program:x]\nkey={line_value}\n")
    parser.expand_here("/here")
    return str(parser.get("program:x", "key"))


@given(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=40))
@settings(max_examples=400)
def test_supervisord_env_token_round_trips(value: str) -> None:
    token = sv.env_token(value)
    if token is None:
        return  # exported by the wrapper shell instead (checked by the real run)
    raw = parse_value(f'K={token},PORT="5000"')
    expanded = module("supervisor.options").expand(raw, {"here": "/here"}, "environment")
    parsed = module("supervisor.datatypes").dict_of_key_value_pairs(expanded)
    assert parsed == {"K": value, "PORT": "5000"}


def test_supervisord_env_token_takes_most_hostile_values() -> None:
    native = {k for k, v in {**HOSTILE, **EXTRA}.items() if sv.env_token(v) is not None}
    assert {"SPACES", "SINGLE", "DOLLAR", "BACKSLASH", "URL", "EMPTY", "COMMA"} <= native
    assert {"NEWLINES", "DOUBLE", "BOTH", "QUOTE_ENDS", "SEMI", "HASH"}.isdisjoint(native)


@given(st.text(alphabet=st.characters(blacklist_characters="\0\n\r"), max_size=40))
@settings(max_examples=400)
def test_supervisord_command_arg_round_trips(arg: str) -> None:
    line = " ".join(sv.command_arg(a, "x") for a in ("/bin/sh", "-c", arg))
    expand = module("supervisor.options").expand
    expanded = expand(parse_value(line), {"here": "/here"}, "command")
    assert shlex.split(expanded) == ["/bin/sh", "-c", arg]


@given(st.text(alphabet=st.characters(blacklist_characters="\0"), max_size=30))
def test_supervisord_shell_literal_has_no_line_break(value: str) -> None:
    word, used = sv.shell_literal(value)
    assert "\n" not in word and "\r" not in word
    assert used <= {"_corral_nl", "_corral_cr"}


def test_supervisord_rejects_unrepresentable_paths() -> None:
    with pytest.raises(CorralError, match="supervisord"):
        render("supervisord", context(app_root=Path("/srv/a ;b")))
    with pytest.raises(CorralError, match="line break"):
        render("supervisord", context(procfile="web: echo a\rb\n", counts={}))


# -- templates -------------------------------------------------------------------


def test_user_template_replaces_builtin(tmp_path: Path) -> None:
    (tmp_path / "systemd.service").write_text(
        "[Service]\nExecStart=$exec_start\nEnvironment=COST=$$5\n# $unit $instance\n"
    )
    (tmp_path / "unrelated.txt").write_text("ignored")
    (tmp_path / "runit.run").write_text("other formats' templates are ignored")
    files = by_path(render("systemd", context(template_dir=tmp_path)))
    unit = files["my_app-web.1.service"].content
    assert unit == (
        "[Service]\n"
        'ExecStart=/bin/sh -c "exec python3 -m http.server $$PORT"\n'
        "Environment=COST=$5\n"
        "# my_app-web.1.service web.1\n"
    )
    assert files["my_app.target"].content == render("systemd", context())[0].content


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("systemd.service", "x=$nope\n", "unknown placeholder $nope"),
        ("systemd.service", "cost: $5\n", "write $$ for a literal $"),
        ("systemd.servic", "x\n", "not a systemd template name"),
    ],
)
def test_bad_user_templates(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(CorralError, match=re.escape(message)):
        render("systemd", context(template_dir=tmp_path))


def test_template_dir_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CorralError, match="does not exist"):
        render("runit", context(template_dir=tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorralError, match="not a directory"):
        render("runit", context(template_dir=tmp_path / "file"))


@pytest.mark.parametrize("fmt", ["compose", "kubernetes"])
def test_yaml_formats_have_no_templates(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(CorralError, match="no templates"):
        render(fmt, context(template_dir=tmp_path))


# -- restart settings --------------------------------------------------------------


def test_default_restart_is_on_failure() -> None:
    ctx = context()
    assert "Restart=on-failure\n" in by_path(render("systemd", ctx))["my_app-web.1.service"].content
    conf = render("supervisord", ctx)[0].content
    assert conf.count("autorestart=unexpected\nexitcodes=0\n") == 4
    finish = by_path(render("runit", ctx))["my_app-web-1/finish"].content
    assert 'if [ "$1" = 0 ]; then exec sv down .; fi' in finish


def test_restart_settings_per_type() -> None:
    ctx = context(
        policies={
            "web": Policy(restart=RestartPolicy("always")),
            "worker": Policy(restart=RestartPolicy("no")),
            "foo_bar": Policy(restart=RestartPolicy("always")),  # not given: the default
        },
        restart_given=frozenset({"web", "worker"}),
    )
    systemd = by_path(render("systemd", ctx))
    assert "Restart=always\n" in systemd["my_app-web.1.service"].content
    assert "Restart=no\n" in systemd["my_app-worker.1.service"].content
    assert "Restart=on-failure\n" in systemd["my_app-foo_bar.1.service"].content
    compose = yaml.safe_load(render("compose", ctx)[0].content)["services"]
    assert [compose[n]["restart"] for n in ("web", "worker", "foo-bar")] == [
        "always",
        "no",
        "on-failure",
    ]
    runit = by_path(render("runit", ctx))
    assert "exit 0" in runit["my_app-web-1/finish"].content
    assert "exec sv down .\n" in runit["my_app-worker-1/finish"].content


# -- systemd escaping ----------------------------------------------------------------


def test_systemd_escaping() -> None:
    unit = by_path(render("systemd", context()))["my_app-worker.1.service"].content
    assert 'Environment="PERCENT=100%% %%n %%%% %%(here)s %%(ENV_HOME)s %%i"\n' in unit
    assert 'Environment="NEWLINES=line1\\nline2\\n\\n"\n' in unit
    assert 'Environment="BOTH=he said \\"it\'s\\" ok"\n' in unit
    assert 'Environment="DOLLAR=$HOME $PORT $$ $(echo no) `echo no` $"\n' in unit
    assert (
        'ExecStart=/bin/sh -c "python3 worker.py --queue \\"$$QUEUE\\" --rate 100%% ; '
        "echo 'not reached' # comment\"\n"
    ) in unit
    assert "KillMode=control-group\n" in unit  # the shell stays: signal all of them
