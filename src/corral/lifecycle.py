"""Lifecycle settings: which process types are one-shots, restart, wait for
others, have readiness probes or their own stop signal.

Owns reading those settings (command line, `CORRAL_*` environment, and an
optional `corral.toml` or `[tool.corral]` in `pyproject.toml` beside the
Procfile), validating them, and turning them into one `Policy` per type.
Pure apart from reading the config file; it knows no processes.

Everything that could only fail later is an error here, at load time, so
`corral check` finds it and nothing starts: an unknown process, policy or
signal, a dependency cycle, a value of the wrong type (`after = 5`), a
number that is not finite or too large for a float, a probe interval under
`MIN_PROBE_INTERVAL`, and every probe that cannot run (a NUL byte, text that
is not UTF-8, `tcp:notaport`, a port out of 1-65535, a bad regex: see
`ProbeSpec.validate`).  `https:` probes are refused with the alternative
(`cmd:curl ...`): the loop checks readiness without TLS.  Each error is one
line naming where the value came from: `corral.toml: processes.web.after`,
`pyproject.toml: tool.corral.processes.web.ready`, or `--ready web`.  What
only an instance's environment can tell (an unset `$VAR` in a probe, a
`$PORT` that is not a port) is checked by the formation, still before
anything starts.  Long but finite durations are accepted: the supervisor
clamps its waits.

A Procfile with no settings gives every type the default `Policy`: the plain
first-exit-stops-everything behaviour.  The one implicit rule is Heroku's
release phase: a Procfile entry named `release` is a one-shot that every other
type waits for (except those the release itself is `after`), unless turned off
(`--no-release`).

File format (TOML; every key optional):

    [release]
    enabled = true
    timeout = 300                   # seconds; it then counts as failed

    [processes.migrate]
    oneshot = true

    [processes.web]
    after = ["migrate", "db"]
    ready = "http:$PORT/health"     # or { probe = "...", interval = 0.5, timeout = 60 }
                                    # tcp:[HOST:]PORT, http:[HOST:]PORT/PATH,
                                    # http://HOST[:PORT]/PATH, file:PATH,
                                    # cmd:COMMAND, log:REGEX
    stop_signal = "QUIT"
    stop_timeout = 10

    [processes.worker]
    restart = "on-failure"          # or { policy = "on-failure", delay = 1,
                                    #      max_delay = 30, limit = 5, window = 60,
                                    #      reset_after = 10 }
"""

from __future__ import annotations

import math
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from corral.errors import CorralError, UsageError
from corral.specs import PROBE_KINDS, RESTART_MODES, Policy, ProbeError, ProbeSpec, RestartPolicy

RELEASE = "release"
CONFIG_FILE = "corral.toml"
DEFAULT_PROBE_TIMEOUT = 60.0
PROCESS_KEYS = {"oneshot", "restart", "after", "ready", "stop_signal", "stop_timeout", "timeout"}
RESTART_KEYS = {"policy", "delay", "max_delay", "limit", "window", "reset_after"}
PROBE_KEYS = {"probe", "interval", "timeout"}
MIN_PROBE_INTERVAL = 0.01  # seconds; less would keep the loop busy with attempts
PYPROJECT = "pyproject.toml"
PYPROJECT_TABLE = ("tool", "corral")


@dataclass
class Settings:
    """Raw per-type settings (the TOML shape), and the release switches.

    `source` and `table` say where the file's settings came from, `given`
    which (type, key) an option set instead: error messages name the origin.
    """

    processes: dict[str, dict[str, Any]] = field(default_factory=dict)
    release: bool = True
    release_timeout: float | None = None
    source: str = "settings"
    table: str = ""  # the settings' table in the file: "tool.corral." in pyproject.toml
    given: dict[tuple[str, str], str] = field(default_factory=dict)  # (type, key) -> option

    def where(self, name: str, key: str | None = None) -> str:
        """`corral.toml: processes.web.ready`, or `--ready web` for an option."""
        keys = [key] if key is not None else list(self.processes.get(name, {}))
        options = [self.given[(name, k)] for k in keys if (name, k) in self.given]
        if options and len(options) == len(keys):
            return f"{options[0]} {name}"
        dotted = f"processes.{name}" + (f".{key}" if key is not None else "")
        return f"{self.source}: {self.table}{dotted}"


# -- reading ------------------------------------------------------------------


def load_file(root: Path) -> Settings:
    """`corral.toml` beside the Procfile, else `[tool.corral]` in `pyproject.toml`."""
    for name, table_path in ((CONFIG_FILE, ()), (PYPROJECT, PYPROJECT_TABLE)):
        path = root / name
        if not path.is_file():
            continue
        label = str(path)
        try:
            data: Any = _toml().loads(path.read_text(encoding="utf-8"))
        except _toml().TOMLDecodeError as exc:
            raise CorralError(f"{label}: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CorralError(f"{label}: cannot read: {exc}") from None
        for depth, key in enumerate(table_path):
            data = data.get(key, {})
            if not isinstance(data, Mapping):
                dotted = ".".join(table_path[: depth + 1])
                raise CorralError(f"{label}: {dotted} must be a table, not {_type(data)}")
        if not table_path or data:
            table = "".join(key + "." for key in table_path)
            return _from_table(data, label, table)
    return Settings()


def _toml() -> ModuleType:
    """tomllib (tomli before 3.11), imported only when a config file exists."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    return tomllib  # type: ignore[no-any-return,unused-ignore]


def _from_table(data: Mapping[str, Any], label: str, table: str = "") -> Settings:
    unknown = set(data) - {"processes", RELEASE}
    if unknown:
        where = f"{label}: {table[:-1]}" if table else label
        raise CorralError(
            f"{where}: unknown section {sorted(unknown)[0]!r} (use processes, release)"
        )
    settings = Settings(source=label, table=table)
    processes = data.get("processes", {})
    if not isinstance(processes, Mapping):
        raise CorralError(f"{label}: {table}processes must be a table, not {_type(processes)}")
    for name, values in processes.items():
        if not isinstance(values, Mapping):
            raise CorralError(
                f"{label}: {table}processes.{name} must be a table, not {_type(values)}"
            )
        bad = set(values) - PROCESS_KEYS
        if bad:
            raise CorralError(
                f"{label}: {table}processes.{name}: unknown setting {sorted(bad)[0]!r} "
                f"(use {', '.join(sorted(PROCESS_KEYS))})"
            )
        settings.processes[name] = dict(values)
    release = data.get(RELEASE, {})
    if not isinstance(release, Mapping) or set(release) - {"enabled", "timeout"}:
        raise CorralError(f"{label}: {table}release takes enabled and timeout")
    where = f"{label}: {table}release"
    if "enabled" in release:
        settings.release = _bool(release["enabled"], f"{where}.enabled")
    if "timeout" in release:
        settings.release_timeout = _seconds(release["timeout"], f"{where}.timeout")
    return settings


def _type(value: object) -> str:
    """The TOML name of a value's type, for messages."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    for kind, word in names.items():
        if isinstance(value, kind):
            return word
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return "a date or time"


def apply_options(
    settings: Settings,
    *,
    oneshot: Sequence[str] = (),
    restart: Sequence[str] = (),
    after: Sequence[str] = (),
    ready: Sequence[str] = (),
    stop_signal: Sequence[str] = (),
    stop_timeout: Sequence[str] = (),
) -> Settings:
    """Overlay command-line/environment settings (they win over the file).

    Forms: `--oneshot a,b`, `--restart worker=on-failure`, `--after web:migrate`
    (`web:migrate+db` for several), `--ready web=tcp:$PORT`, `--stop-signal
    worker=INT`, `--stop-timeout worker=30`.
    """

    def put(name: str, key: str, value: object, option: str) -> None:
        settings.processes.setdefault(name, {})[key] = value
        settings.given[(name, key)] = option

    for name in _items(oneshot):
        put(name, "oneshot", True, "--oneshot")
    for item in _items(after):
        name, deps = _pair(item, ":", "--after", "NAME:DEPENDENCY")
        current = settings.processes.get(name, {}).get("after", [])
        if isinstance(current, str):
            current = [current]
        if not isinstance(current, (list, tuple)):
            where = settings.where(name, "after")
            raise UsageError(f"{where}: expected a list of process names, not {_type(current)}")
        put(
            name, "after", [*current, *(d.strip() for d in deps.split("+") if d.strip())], "--after"
        )
    keyed = (
        (_items(restart), "restart", "NAME=POLICY"),
        (ready, "ready", "NAME=KIND:TARGET"),  # not comma-split: probes may contain commas
        (_items(stop_signal), "stop_signal", "NAME=SIGNAL"),
        (_items(stop_timeout), "stop_timeout", "NAME=SECONDS"),
    )
    for items, key, form in keyed:
        option = "--" + key.replace("_", "-")
        for item in items:
            name, value = _pair(item, "=", option, form)
            put(name, key, value, option)
    return settings


def _items(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _pair(item: str, sep: str, option: str, form: str) -> tuple[str, str]:
    name, found, value = item.partition(sep)
    if not found or not name.strip() or not value.strip():
        raise UsageError(f"{option}: bad value {item!r} (expected {form})")
    return name.strip(), value.strip()


# -- validating ---------------------------------------------------------------


def policies(
    settings: Settings,
    known: Sequence[str],
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> dict[str, Policy]:
    """One validated `Policy` per Procfile type."""
    for name in settings.processes:
        if name not in known:
            raise UsageError(
                f"{settings.where(name)}: unknown process {name!r} "
                f"(the Procfile has: {', '.join(known)})"
            )
    result: dict[str, Policy] = {}
    for name in known:
        raw = settings.processes.get(name, {})

        def where(key: str, name: str = name) -> str:
            return settings.where(name, key)

        policy = Policy(
            oneshot=_bool(raw.get("oneshot", False), where("oneshot")),
            restart=_restart(raw.get("restart", "no"), where("restart")),
            after=_after(raw.get("after", ()), where("after"), name, known),
            ready=_probe(raw["ready"], where("ready"), probe_timeout) if "ready" in raw else None,
            stop_signal=_signal(raw.get("stop_signal", "TERM"), where("stop_signal")),
            stop_timeout=(
                _seconds(raw["stop_timeout"], where("stop_timeout"))
                if "stop_timeout" in raw
                else None
            ),
            run_timeout=_seconds(raw["timeout"], where("timeout")) if "timeout" in raw else None,
        )
        result[name] = policy
    if settings.release and RELEASE in result:
        release = result[RELEASE]
        result[RELEASE] = replace(
            release,
            oneshot=True,
            run_timeout=settings.release_timeout
            if settings.release_timeout is not None
            else release.run_timeout,
        )
        # Everyone waits for the release, except what the release itself
        # needs (`after = ["db"]`): a database in the same container must be
        # up for the migrations to run.
        check_cycles(result)
        needed = _closure(result, RELEASE)
        for name, policy in result.items():
            if name not in needed and RELEASE not in policy.after:
                result[name] = replace(policy, after=(*policy.after, RELEASE))
    check_cycles(result)
    return result


def _closure(result: Mapping[str, Policy], name: str) -> set[str]:
    """`name` and everything it depends on, directly or not."""
    seen = {name}
    todo = [name]
    while todo:
        for dep in result[todo.pop()].after:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def check_cycles(result: Mapping[str, Policy]) -> None:
    """Reject `after` cycles up front, naming one: `a -> b -> a`."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise UsageError(f"dependency cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in result[name].after:
            visit(dep, [*path, name])
        state[name] = 2

    for name in result:
        visit(name, [])


# -- value parsers ------------------------------------------------------------


def _show(value: object) -> str:
    """A value for a one-line message: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + "..." + text[-7:]


def _bool(value: object, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise UsageError(f"{where}: expected true or false, got {_show(value)}")


def _seconds(value: object, where: str) -> float:
    """A duration: a finite number of seconds, 0 or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UsageError(f"{where}: expected seconds, not {_type(value)}")
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{where}: expected seconds, got {_show(value)}") from None
    except OverflowError:
        raise UsageError(f"{where}: {_show(value)} seconds is too large") from None
    if not (number >= 0 and math.isfinite(number)):
        raise UsageError(f"{where}: expected 0 or more seconds, got {_show(value)}")
    return number


def _restart(value: object, where: str) -> RestartPolicy:
    if isinstance(value, str):
        value = {"policy": value}
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: expected a policy name or a table, not {_type(value)}")
    bad = set(value) - RESTART_KEYS
    if bad:
        raise UsageError(f"{where}: unknown setting {sorted(bad)[0]!r}")
    mode = value.get("policy", "on-failure")
    if not isinstance(mode, str):
        raise UsageError(f"{where}.policy: expected no, on-failure or always, not {_type(mode)}")
    mode = mode.strip().lower().replace("_", "-")
    if mode not in RESTART_MODES:
        raise UsageError(f"{where}: unknown policy {mode!r} (use no, on-failure or always)")
    policy = RestartPolicy(mode=mode)
    numbers = {
        k: _seconds(value[k], f"{where}.{k}") for k in RESTART_KEYS - {"policy"} if k in value
    }
    if "limit" in numbers:
        if numbers["limit"] != int(numbers["limit"]) or numbers["limit"] < 1:
            raise UsageError(f"{where}.limit: expected a whole number of 1 or more")
        numbers["limit"] = int(numbers["limit"])
    return replace(policy, **numbers)  # type: ignore[arg-type]


def _after(value: object, where: str, name: str, known: Sequence[str]) -> tuple[str, ...]:
    deps = [value] if isinstance(value, str) else value
    if not isinstance(deps, (list, tuple)) or not all(isinstance(d, str) for d in deps):
        raise UsageError(f"{where}: expected a list of process names, got {_show(value)}")
    for dep in deps:
        if dep not in known:
            raise UsageError(
                f"{where}: unknown process {dep!r} (the Procfile has: {', '.join(known)})"
            )
        if dep == name:
            raise UsageError(f"dependency cycle: {name} -> {name}")
    return tuple(dict.fromkeys(deps))


def _probe(value: object, where: str, default_timeout: float) -> ProbeSpec:
    """A readiness probe, checked as far as it can be without the environment."""
    if isinstance(value, str):
        table: Mapping[str, Any] = {"probe": value}
    elif isinstance(value, Mapping):
        table = value
    else:
        raise UsageError(
            f"{where}: expected 'KIND:TARGET' or a table with probe = '...', not {_type(value)}"
        )
    if "probe" not in table:
        raise UsageError(f"{where}: expected a table with probe = 'KIND:TARGET'")
    bad = set(table) - PROBE_KEYS
    if bad:
        raise UsageError(f"{where}: unknown setting {sorted(bad)[0]!r}")
    text = table["probe"]
    if not isinstance(text, str):
        raise UsageError(f"{where}.probe: expected 'KIND:TARGET', not {_type(text)}")
    text = text.strip()
    if text.lower().startswith("http://"):
        kind, target = "http", text
    else:
        kind, _, target = text.partition(":")
        kind = kind.strip().lower()
    if kind == "exec":
        kind = "cmd"
    if kind == "https":
        url = text if text.lower().startswith("https://") else "https://HOST:PORT/PATH"
        raise UsageError(
            f"{where}: https probes are not supported (readiness is checked in corral's "
            f"own loop, without TLS); use cmd:curl -fsk -o /dev/null {url}"
        )
    if kind not in PROBE_KINDS or not target.strip():
        raise UsageError(
            f"{where}: cannot parse probe {_show(text)} (use tcp:[HOST:]PORT, "
            "http:[HOST:]PORT/PATH, http://HOST[:PORT]/PATH, file:PATH, cmd:COMMAND or log:REGEX)"
        )
    interval = _seconds(table.get("interval", 0.5), f"{where}.interval")
    timeout = _seconds(table.get("timeout", default_timeout), f"{where}.timeout")
    if interval < MIN_PROBE_INTERVAL:
        raise UsageError(f"{where}.interval: must be at least {MIN_PROBE_INTERVAL:g} seconds")
    spec = ProbeSpec(kind, target.strip(), interval, timeout)
    try:
        spec.validate()
    except ProbeError as exc:
        raise UsageError(f"{where}: {exc}") from None
    return spec


def _signal(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise UsageError(f"{where}: expected a signal name or number, not {_type(value)}")
    text = str(value).strip().upper()
    try:
        if text.isdigit():
            return int(signal.Signals(int(text)))
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except (KeyError, ValueError):
        raise UsageError(f"{where}: unknown signal {_show(value)}") from None
