"""What all exporters share: the instance list, each instance's environment
and lifecycle, the `sh -c` script, readiness checks as shell commands, input
checks, name sanitising, timeouts, and the template machinery.

Owned here so that every format computes ports, names, environments, restart
modes and dependencies the same way (the same rules as `corral start`, see
`corral.formation`) and rejects the same bad input with the same `CorralError`.
Format-specific escaping lives in each format's module, next to the syntax it
escapes for.
"""

from __future__ import annotations

import math
import re
import shlex
import signal
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError
from corral.export.model import RESTART_MODES, ExportContext, Restart
from corral.export.templates import BUILTIN
from corral.formation import PORT_STEP
from corral.shell import exec_command
from corral.specs import Policy, ProbeSpec, RestartPolicy

# Variables every per-instance export sets itself (as `corral start` does);
# the same names in .env are overridden, like `-p` beats PORT from .env.
PORT = "PORT"
INSTANCE_VARS = ("PORT", "PS", "HONCHO_PROCESS_NAME")

APP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DNS_LABEL_MAX = 63


@dataclass(frozen=True)
class ProcessType:
    """A Procfile entry with its position, first PORT, concurrency and lifecycle."""

    name: str
    command: str
    index: int  # position in the Procfile: fixes the PORT block
    port: int  # PORT of instance 1 (compose/k8s replicas all use it)
    count: int
    restart: Restart  # the mode to export (`ExportContext.restart_mode`)
    policy: Policy
    backoff: RestartPolicy | None  # the user's restart table, None if not given
    after: tuple[str, ...]  # dependencies that are exported (count > 0)
    stop_timeout: float  # its own grace before SIGKILL, else the global one

    @property
    def oneshot(self) -> bool:
        return self.policy.oneshot

    @property
    def ready(self) -> ProbeSpec | None:
        """The readiness probe; a one-shot's is ignored (it is waited for by completion)."""
        return None if self.oneshot else self.policy.ready

    @property
    def stop_signal(self) -> str:
        """`TERM`, `INT`, ...: the stop signal without `SIG`."""
        return signal_name(self.policy.stop_signal)


@dataclass(frozen=True)
class Instance:
    """One instance (`web.2`) of a process type, for per-instance formats."""

    kind: ProcessType
    num: int  # from 1

    @property
    def name(self) -> str:
        """`web.2`: the PS / HONCHO_PROCESS_NAME value."""
        return f"{self.kind.name}.{self.num}"

    @property
    def port(self) -> int:
        return self.kind.port + self.num - 1


def check(ctx: ExportContext) -> None:
    """Reject input no format can export; raise `CorralError`."""
    if not APP_RE.fullmatch(ctx.app):
        raise CorralError(
            f"cannot export app name {ctx.app!r}: use letters, digits, '.', '_' and '-' "
            "(choose one with -a)"
        )
    if not USER_RE.fullmatch(ctx.user):
        raise CorralError(f"cannot export user name {ctx.user!r} (choose one with -u)")
    if not ctx.shell or any(c.isspace() or not c.isprintable() for c in ctx.shell):
        raise CorralError(f"cannot export shell {ctx.shell!r}: give a path without spaces")
    for what, value in (("log directory", ctx.log_dir), ("app root", str(ctx.app_root))):
        if not value or not value.isprintable():
            raise CorralError(f"cannot export {what} {value!r}: it contains control characters")
    if not math.isfinite(ctx.timeout) or ctx.timeout < 0:
        raise CorralError(f"bad timeout {ctx.timeout!r}: give 0 or more seconds")
    known = [e.name for e in ctx.entries]
    for name, count in ctx.counts.items():
        if name not in known:
            raise CorralError(
                f"concurrency: unknown process {name!r} (the Procfile has: {', '.join(known)})"
            )
        if count < 0:
            raise CorralError(f"concurrency: {name}={count}: count must be 0 or more")
    check_policies(ctx, known)
    for key, value in ctx.env.items():
        if not ENV_KEY_RE.fullmatch(key):
            raise CorralError(
                f"cannot export variable {key!r}: names must be letters, digits and '_', "
                "not starting with a digit"
            )
        if "\0" in value:
            raise CorralError(f"cannot export variable {key}: its value contains a NUL byte")


def check_policies(ctx: ExportContext, known: Sequence[str]) -> None:
    """Lifecycle settings an API caller could get wrong (the CLI validates its own)."""
    for name in [*ctx.policies, *ctx.restart_given]:
        if name not in known:
            raise CorralError(
                f"lifecycle: unknown process {name!r} (the Procfile has: {', '.join(known)})"
            )
    for name, policy in ctx.policies.items():
        if policy.restart.mode not in RESTART_MODES:
            raise CorralError(f"lifecycle: {name}: unknown restart policy {policy.restart.mode!r}")
        for dep in policy.after:
            if dep not in known or dep == name:
                raise CorralError(f"lifecycle: {name}: bad dependency {dep!r}")
        try:
            signal.Signals(policy.stop_signal)
        except ValueError:
            raise CorralError(
                f"lifecycle: {name}: unknown stop signal {policy.stop_signal}"
            ) from None
        for what, value in (
            ("stop timeout", policy.stop_timeout),
            ("run timeout", policy.run_timeout),
            ("restart delay", policy.restart.delay),
            ("restart window", policy.restart.window),
            ("probe interval", policy.ready.interval if policy.ready else None),
            ("probe timeout", policy.ready.timeout if policy.ready else None),
        ):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise CorralError(f"lifecycle: {name}: bad {what} {value!r}")
        if policy.ready is not None and policy.ready.interval <= 0:
            raise CorralError(f"lifecycle: {name}: the probe interval must be more than 0")
    if "\0" in "".join(p.ready.target for p in ctx.policies.values() if p.ready):
        raise CorralError("lifecycle: a readiness probe contains a NUL byte")


def process_types(ctx: ExportContext) -> list[ProcessType]:
    """All Procfile types in order, with PORT, count and lifecycle (0-count types included).

    `after` keeps only the dependencies that run (count > 0): as in `corral
    start`, a dependency that is not part of the formation is not waited for.
    """
    return [
        ProcessType(
            name=entry.name,
            command=entry.command,
            index=index,
            port=ctx.base_port + PORT_STEP * index,
            count=ctx.count(entry.name),
            restart=ctx.restart_mode(entry.name),
            policy=policy,
            backoff=policy.restart if entry.name in ctx.restart_given else None,
            after=tuple(dep for dep in policy.after if ctx.count(dep) > 0),
            stop_timeout=ctx.timeout if policy.stop_timeout is None else policy.stop_timeout,
        )
        for index, entry in enumerate(ctx.entries)
        for policy in [ctx.policy(entry.name)]
    ]


def levels(types: Sequence[ProcessType]) -> dict[str, int]:
    """Start level of each type: 0 without dependencies, else 1 + its deepest dependency's."""
    by_name = {t.name: t for t in types}
    result: dict[str, int] = {}

    def level(name: str, path: tuple[str, ...]) -> int:
        if name not in result:
            if name in path:
                raise CorralError(f"dependency cycle: {' -> '.join((*path, name))}")
            deps = by_name[name].after
            result[name] = 1 + max((level(d, (*path, name)) for d in deps), default=-1)
        return result[name]

    for t in types:
        level(t.name, ())
    return result


def signal_name(number: int) -> str:
    """`INT` for SIGINT: the form kill -s, supervisord and systemd (with SIG) take."""
    return signal.Signals(number).name.removeprefix("SIG")


def instances(ctx: ExportContext) -> list[Instance]:
    """Every instance to run, types in Procfile order (0-count types have none)."""
    return [Instance(t, n) for t in process_types(ctx) for n in range(1, t.count + 1)]


def dotenv_vars(ctx: ExportContext, skip: tuple[str, ...] = INSTANCE_VARS) -> dict[str, str]:
    """The .env values, less the variables the export sets itself."""
    return {k: v for k, v in ctx.env.items() if k not in skip}


def instance_env(ctx: ExportContext, inst: Instance) -> dict[str, str]:
    """The environment an instance gets: PORT, PS, HONCHO_PROCESS_NAME, then .env."""
    env = {"PORT": str(inst.port), "PS": inst.name, "HONCHO_PROCESS_NAME": inst.name}
    env.update(dotenv_vars(ctx))
    return env


# Words that make a command more than one simple command when they come
# first: reserved words (POSIX, bash, ksh) and the builtins that have no
# program of the same name, or whose effect is on the shell itself (`exec cd`
# fails, `exec export X=1` fails, `exec . ./env` fails).
def shell_script(command: str, exports: Mapping[str, str] | None = None) -> str:
    """The `sh -c` script: export what the target cannot carry, then the command.

    A simple command is run with `exec`, which makes the app the supervised
    process (no shell left in between to receive the stop signal and orphan
    it).  Anything else (`cd x && cmd`, `FOO=1 cmd`, `a; b`, a pipeline) runs
    as written under the shell: each format then signals the whole process
    group (see `corral.export`).  The values are single-quoted, so the shell
    takes them literally.
    """
    prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (exports or {}).items())
    return f"{prefix}{exec_command(command)}"


# -- readiness checks as shell commands -----------------------------------------

TCP_CHECK = (
    "if command -v nc >/dev/null 2>&1; then nc -z -w 2 {host} {port}; "
    "else bash -c ': <\"/dev/tcp/$0/$1\"' {host} {port}; fi"
)
HTTP_CHECK = (
    "if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null {url}; "
    "elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null {url}; "
    "else python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "
    "{url}; fi"
)


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def _dq_literal(text: str) -> str:
    return re.sub(r'([\\"`$])', r"\\\1", text)


def expanding_word(text: str) -> str:
    """A double-quoted sh word for a probe target: its `$VAR` and `${VAR}` are
    expanded by the shell at check time from the process's environment (as
    `corral start` expands them from the instance's), `$$` is a literal `$`,
    and everything else is literal.  Plain text stays unquoted."""
    if _PLAIN_WORD.fullmatch(text):
        return text
    out = ['"']
    pos = 0
    for match in string.Template.pattern.finditer(text):
        out.append(_dq_literal(text[pos : match.start()]))
        name = match.group("named") or match.group("braced")
        out.append("${" + name + "}" if name else "\\$")
        pos = match.end()
    out.append(_dq_literal(text[pos:]))
    out.append('"')
    return "".join(out)


def http_url(target: str) -> str:
    """The URL of an `http:` probe target (`$PORT/health` is on 127.0.0.1)."""
    return target if "://" in target else "http://127.0.0.1:" + target


def tcp_address(target: str) -> tuple[str, str]:
    """(host, port) of a `tcp:[HOST:]PORT` target; host 127.0.0.1 when absent."""
    host, _, port = target.rpartition(":")
    return host.strip("[]") or "127.0.0.1", port


def probe_command(probe: ProbeSpec) -> str | None:
    """One attempt of a readiness probe as a sh command (exit 0: ready), or None
    for a `log:` probe, which watches output only corral sees.

    tcp: `nc -z`, else bash's /dev/tcp; http: curl, else wget, else python3
    (2xx, and with curl and wget also 3xx, count as ready); file: `test -e`;
    cmd: the command itself.
    """
    if probe.kind == "tcp":
        host, port = tcp_address(probe.target)
        return TCP_CHECK.format(host=expanding_word(host), port=expanding_word(port))
    if probe.kind == "http":
        return HTTP_CHECK.format(url=expanding_word(http_url(probe.target)))
    if probe.kind == "file":
        return f"test -e {expanding_word(probe.target)}"
    if probe.kind == "cmd":
        return probe.target
    return None


def dns_label(text: str, what: str) -> str:
    """Map a name to an RFC 1123 label (`foo_bar` -> `foo-bar`, lower case, <= 63)."""
    label = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    label = label[:DNS_LABEL_MAX].rstrip("-")
    if not label:
        raise CorralError(f"cannot make a DNS name from {what} {text!r}")
    return label


def unique_labels(names: list[str], prefix: str, what: str) -> dict[str, str]:
    """`prefix-<label>` for each name; two names giving the same label is an error."""
    seen: dict[str, str] = {}
    result: dict[str, str] = {}
    for name in names:
        label = dns_label(f"{prefix}-{name}" if prefix else name, what)
        if label in seen:
            raise CorralError(
                f"process types {seen[label]!r} and {name!r} both become {what} "
                f"{label!r}; rename one in the Procfile"
            )
        seen[label] = name
        result[name] = label
    return result


def seconds(timeout: float) -> str:
    """A duration for systemd/compose: `5` -> `5`, `2.5` -> `2500ms`."""
    if timeout == int(timeout):
        return str(int(timeout))
    return f"{round(timeout * 1000)}ms"


def whole_seconds(timeout: float) -> int:
    """A duration for formats that only take whole seconds (rounded up)."""
    return math.ceil(timeout)


class Templates:
    """The templates of one format: built-in ones, replaced by user files.

    The scheme (documented in `corral.export.templates`): a file in the `-t`
    directory named exactly like a built-in template (`systemd.service`,
    `runit.run`, ...) replaces it.  Templates are `string.Template` text.
    """

    def __init__(self, fmt: str, template_dir: Path | None) -> None:
        self.fmt = fmt
        self.names = sorted(n for n in BUILTIN if n.startswith(f"{fmt}."))
        self.texts = {n: BUILTIN[n] for n in self.names}
        self.sources = {n: f"built-in template {n}" for n in self.names}
        if template_dir is not None:
            self._load_user(template_dir)

    def _load_user(self, template_dir: Path) -> None:
        if not template_dir.is_dir():
            what = "does not exist" if not template_dir.exists() else "is not a directory"
            raise CorralError(f"template directory {template_dir} {what}")
        if not self.names:
            raise CorralError(
                f"the {self.fmt} export has no templates (-t); "
                + (
                    "customise it with a compose override file"
                    if self.fmt == "compose"
                    else "customise it with kustomize or a patch"
                )
            )
        try:
            present = sorted(p.name for p in template_dir.iterdir())
        except OSError as exc:
            raise CorralError(
                f"cannot read template directory {template_dir}: {exc.strerror}"
            ) from None
        for name in present:
            if name.startswith(f"{self.fmt}.") and name not in self.texts:
                raise CorralError(
                    f"{template_dir / name}: not a {self.fmt} template name "
                    f"(the {self.fmt} templates are: {', '.join(self.names)})"
                )
        for name in self.names:
            if name not in present:
                continue
            path = template_dir / name
            try:
                self.texts[name] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                raise CorralError(f"template {path} is not valid UTF-8") from None
            except OSError as exc:
                raise CorralError(f"cannot read template {path}: {exc.strerror}") from None
            self.sources[name] = f"template {path}"

    def render(self, name: str, values: Mapping[str, str]) -> str:
        """Fill template `name`; a bad or unknown placeholder is a `CorralError`."""
        text, source = self.texts[name], self.sources[name]
        try:
            return string.Template(text).substitute(values)
        except KeyError as exc:
            raise CorralError(
                f"{source}: unknown placeholder ${exc.args[0]} "
                f"(available: {', '.join('$' + k for k in sorted(values))})"
            ) from None
        except ValueError as exc:
            raise CorralError(f"{source}: {exc} (write $$ for a literal $)") from None
