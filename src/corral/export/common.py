"""What all exporters share: the instance list, each instance's environment,
input checks, name sanitising, timeouts, and the template machinery.

Owned here so that every format computes ports, names and environments the same
way (the same rules as `corral start`, see `corral.formation`) and rejects the
same bad input with the same `CorralError`.  Format-specific escaping lives in
each format's module, next to the syntax it escapes for.
"""

from __future__ import annotations

import math
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError
from corral.export.model import ExportContext, Restart
from corral.export.templates import BUILTIN
from corral.formation import PORT_STEP

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
    """A Procfile entry with its position, first PORT and concurrency."""

    name: str
    command: str
    index: int  # position in the Procfile: fixes the PORT block
    port: int  # PORT of instance 1 (compose/k8s replicas all use it)
    count: int
    restart: Restart


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
    for key, value in ctx.env.items():
        if not ENV_KEY_RE.fullmatch(key):
            raise CorralError(
                f"cannot export variable {key!r}: names must be letters, digits and '_', "
                "not starting with a digit"
            )
        if "\0" in value:
            raise CorralError(f"cannot export variable {key}: its value contains a NUL byte")


def process_types(ctx: ExportContext) -> list[ProcessType]:
    """All Procfile types in order, with PORT and count (0-count types included)."""
    return [
        ProcessType(
            name=entry.name,
            command=entry.command,
            index=index,
            port=ctx.base_port + PORT_STEP * index,
            count=ctx.count(entry.name),
            restart=ctx.settings_for(entry.name).restart,
        )
        for index, entry in enumerate(ctx.entries)
    ]


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


def shell_script(command: str, exports: Mapping[str, str] | None = None) -> str:
    """The `sh -c` script: export what the target cannot carry, then exec the command.

    `exec` makes the app the supervised process (no forking shell left in between);
    the values are single-quoted, so the shell takes them literally.
    """
    prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (exports or {}).items())
    return f"{prefix}exec {command}"


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
