"""Wiring: options -> files -> process set -> supervisor + multiplexer.

This is the only module that reads the Procfile and `.env` from disk, looks
at the OS environment and decides how output looks; the modules it wires
(`procfile`, `env`, `formation`, `supervisor`, `mux`, `export`) never import
each other's concerns.

Option precedence, for every option that has an environment variable:
command line > `.env` files > OS environment > default.  The `.env` files
themselves are located by `-d`/`CORRAL_APP_ROOT` and `-e`/`CORRAL_ENV`, which
therefore come from the command line or the OS environment only.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corral import env as envfiles
from corral import formation, lifecycle, procfile
from corral.errors import CorralError, UsageError
from corral.mux import Mux, Style, Writer
from corral.signals import ChildSignals
from corral.spawn import Child, reclaim_terminal, spawn_inherited, spawn_piped
from corral.specs import Policy, ProcessSpec
from corral.supervisor import DEFAULT_GRACE, Supervisor, exec_failure_code

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"", "0", "false", "no", "off"}


@dataclass
class Project:
    """The app directory, its Procfile path and its `.env` values."""

    root: Path
    procfile: Path
    procfile_shown: str
    dotenv: dict[str, str]
    os_env: Mapping[str, str]

    def setting(self, cli: object, *keys: str) -> str | None:
        """An option's value: the command line, else `.env`, else the OS env."""
        if cli is not None:
            return str(cli)
        for source in (self.dotenv, self.os_env):
            for key in keys:
                if key in source:
                    return source[key]
        return None

    def child_env(self) -> dict[str, str]:
        """OS environment overlaid by the `.env` files."""
        merged = dict(self.os_env)
        merged.update(self.dotenv)
        return merged


def load_project(args: argparse.Namespace, os_env: Mapping[str, str] | None = None) -> Project:
    os_env = dict(os.environ if os_env is None else os_env)
    root_text = args.app_root or os_env.get("CORRAL_APP_ROOT") or "."
    root = Path(root_text)
    if not root.is_dir():
        raise CorralError(f"{root_text}: app root is not a directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise CorralError(f"{root_text}: app root is not readable (permission denied)")
    env_text = args.env or os_env.get("CORRAL_ENV")
    names = formation.parse_names([env_text]) if env_text else [envfiles.DEFAULT_ENV_FILE]
    dotenv = envfiles.load(root, names, explicit=env_text is not None, base=os_env)
    procfile_text = args.procfile or dotenv.get("PROCFILE") or os_env.get("PROCFILE") or "Procfile"
    path = root / procfile_text
    shown = procfile_text if root_text == "." else str(path)
    return Project(root, path, shown, dotenv, os_env)


def main(args: argparse.Namespace) -> int:
    if args.command == "start":
        return start(args)
    if args.command == "run":
        return run(args)
    if args.command == "check":
        return check(args)
    if args.command == "export":
        return export(args)
    raise AssertionError(f"unhandled command {args.command}")


# -- start --------------------------------------------------------------------


@dataclass
class Plan:
    """Everything `start` needs, validated: what `check` checks."""

    kinds: list[str]  # every Procfile entry, in order
    specs: list[ProcessSpec]
    style: Style
    split_stderr: bool  # text mode: children's stderr to corral's stderr
    grace: float


def start(args: argparse.Namespace) -> int:
    if sys.stdout is None:
        # Python found fd 1 closed at start-up (`corral start >&-`); corral.boot
        # put /dev/null there so that no pipe of ours can take its place.
        raise CorralError(
            "standard output is closed: the processes' output has nowhere to go "
            "(redirect it to /dev/null to discard it)"
        )
    plan = make_plan(args)
    style = plan.style
    writer = _writer(sys.stdout.fileno())
    err_writer = None
    if plan.split_stderr and not style.json:
        if not _same_file(sys.stdout.fileno(), sys.stderr.fileno()):
            err_writer = _writer(sys.stderr.fileno())
        split = True
    else:
        split = style.json
    specs = plan.specs
    mux = Mux(
        [s.name for s in specs],
        writer,
        style,
        quiet=[s.name for s in specs if s.quiet],
        err_writer=err_writer,
    )
    sys.stdout.flush()
    # JSON logs keep a child's stdout and stderr apart (`stream`); text keeps
    # them merged in one pipe, so their relative order is exactly the child's.
    spawn = functools.partial(spawn_piped, split_streams=split)
    return Supervisor(specs, mux, grace=plan.grace, spawn=spawn).run()


def make_plan(args: argparse.Namespace) -> Plan:
    """Read and validate everything `start` uses; start nothing."""
    project = load_project(args)
    entries = procfile.load(project.procfile, project.procfile_shown)
    known = [e.name for e in entries]
    counts = formation.parse_counts(
        _listing(project, args.concurrency, "CORRAL_CONCURRENCY"), known
    )
    quiet = formation.parse_names(_listing(project, args.quiet, "CORRAL_QUIET"))
    selected = args.processes or formation.parse_names(_listing(project, None, "CORRAL_PROCESSES"))
    tty = (project.setting(args.tty, "CORRAL_TTY") or "").strip()
    all_tty = tty.lower() in TRUE_WORDS | {"*", "all"}
    tty_names = ["*"] if all_tty else formation.parse_names([tty])
    child_env = project.child_env()
    if "PYTHONUNBUFFERED" not in child_env:
        # Python children would otherwise hold their output until exit when
        # writing to a pipe: the most common "no output" complaint.
        child_env["PYTHONUNBUFFERED"] = "1"
    specs = formation.expand(
        entries,
        env=child_env,
        base_port=_port(project, args.port),
        counts=counts,
        selected=selected,
        quiet=quiet,
        tty=tty_names,
        cwd=str(project.root.resolve()),
        policies=policies(project, args, known),
    )
    if not specs:
        raise UsageError("nothing to start: every selected process has concurrency 0")
    return Plan(
        kinds=known,
        specs=specs,
        style=_style(project, args),
        split_stderr=_flag(project, args.split_stderr, "CORRAL_SPLIT_STDERR"),
        grace=_timeout(project, args.timeout),
    )


def policies(project: Project, args: argparse.Namespace, known: list[str]) -> dict[str, Policy]:
    """The lifecycle `Policy` of each process type."""
    settings, probe_timeout = lifecycle_settings(project, args)
    return lifecycle.policies(settings, known, probe_timeout)


def lifecycle_settings(
    project: Project, args: argparse.Namespace
) -> tuple[lifecycle.Settings, float]:
    """Lifecycle settings: the config file, overlaid by options/environment;
    and the default probe timeout."""
    settings = lifecycle.load_file(project.procfile.parent)  # beside the Procfile
    # probes may contain commas, so CORRAL_READY separates them with ';'
    ready = args.ready or [
        r for text in _listing(project, None, "CORRAL_READY") for r in text.split(";")
    ]
    lifecycle.apply_options(
        settings,
        oneshot=_listing(project, args.oneshot, "CORRAL_ONESHOT"),
        restart=_listing(project, args.restart, "CORRAL_RESTART"),
        after=_listing(project, args.after, "CORRAL_AFTER"),
        ready=[r for r in ready if r.strip()],
        stop_signal=_listing(project, args.stop_signal, "CORRAL_STOP_SIGNAL"),
        stop_timeout=_listing(project, args.stop_timeout, "CORRAL_STOP_TIMEOUT"),
    )
    if args.no_release or not _flag(project, None, "CORRAL_RELEASE", default=True):
        settings.release = False
    release_timeout = project.setting(args.release_timeout, "CORRAL_RELEASE_TIMEOUT")
    if release_timeout is not None:
        settings.release_timeout = _seconds(release_timeout, "release timeout")
    ready_timeout = project.setting(args.ready_timeout, "CORRAL_READY_TIMEOUT")
    probe_timeout = (
        lifecycle.DEFAULT_PROBE_TIMEOUT
        if ready_timeout is None
        else _seconds(ready_timeout, "ready timeout")
    )
    return settings, probe_timeout


def _writer(fd: int) -> Writer:
    # Terminals stay blocking: their file description is shared with the shell.
    return Writer(fd, nonblocking=not _isatty(fd))


def _same_file(fd1: int, fd2: int) -> bool:
    """Both fds lead to the same file (`2>&1`): one writer, or lines could tear."""
    try:
        a, b = os.fstat(fd1), os.fstat(fd2)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _listing(project: Project, cli: list[str] | None, key: str) -> list[str]:
    """A repeatable option's values, or its variable's value as one item."""
    if cli:
        return list(cli)
    value = project.setting(None, key)
    return [value] if value else []


def _port(project: Project, cli: str | None) -> int:
    text = project.setting(cli, "PORT")
    if text is None:
        return formation.DEFAULT_PORT
    if not formation.WHOLE_NUMBER.fullmatch(text.strip()):
        raise UsageError(f"bad port {text!r}: not a whole number")
    port = int(text)
    if not 0 < port < 65536:
        raise UsageError(f"bad port {text!r}: must be 1-65535")
    return port


def _timeout(project: Project, cli: str | None) -> float:
    text = project.setting(cli, "CORRAL_TIMEOUT")
    return DEFAULT_GRACE if text is None else _seconds(text, "timeout")


def _seconds(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"bad {what} {text!r}: not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise UsageError(f"bad {what} {text!r}: must be 0 or more seconds")
    return value


def _flag(project: Project, cli: bool | None, key: str, default: bool = False) -> bool:
    if cli:
        return True
    text = project.setting(None, key)
    if text is None:
        return default
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise UsageError(f"bad {key} {text!r}: use 1/0, true/false, yes/no or on/off")


def _style(project: Project, args: argparse.Namespace) -> Style:
    log_format = (project.setting(args.log_format, "CORRAL_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise UsageError(f"bad log format {log_format!r}: use text or json")
    return Style(
        colour=_colour(project, args) and log_format == "text",
        prefix=not (args.no_prefix or _flag(project, None, "CORRAL_NO_PREFIX")),
        timestamp=not _flag(project, args.no_timestamp, "CORRAL_NO_TIMESTAMP"),
        json=log_format == "json",
        # a prompt or progress bar is shown while it waits only on a terminal;
        # pipes and files get whole lines (see corral.mux)
        live_partials=_isatty(1),
    )


def _colour(project: Project, args: argparse.Namespace) -> bool:
    """Colour decision: --no-colour/--colour, then NO_COLOR, FORCE_COLOR, the TTY check."""
    if args.no_colour:
        return False
    when = (project.setting(args.colour, "CORRAL_COLOUR", "CORRAL_COLOR") or "auto").lower()
    if when not in ("auto", "always", "never"):
        raise UsageError(f"bad colour setting {when!r}: use auto, always or never")
    if when != "auto":
        enabled = when == "always"
    elif project.os_env.get("NO_COLOR"):
        enabled = False
    elif project.os_env.get("FORCE_COLOR"):
        enabled = True
    else:
        enabled = _isatty(sys.stdout.fileno())
    if enabled:
        import colorama

        colorama.just_fix_windows_console()  # a no-op outside Windows consoles
    return enabled


def _isatty(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


# -- run ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("run: no command given (usage: corral run [--] CMD [ARGS...])")
    project = load_project(args)
    spec = ProcessSpec(
        name="run", kind="run", command=" ".join(argv), env=project.child_env(), argv=tuple(argv)
    )
    style = Style(notices=False)
    mux = Mux([spec.name], Writer(sys.stderr.fileno(), nonblocking=False), style)
    failure: list[OSError] = []

    def spawn(spec: ProcessSpec, signals: ChildSignals) -> Child:
        try:
            return spawn_inherited(spec, signals)
        except OSError as exc:
            failure.append(exc)
            raise

    sys.stdout.flush()
    try:
        code = Supervisor([spec], mux, spawn=spawn, relay=True, grace=_timeout(project, None)).run()
    finally:
        reclaim_terminal()
    if failure:
        exc = failure[0]
        reason = (
            "command not found"
            if isinstance(exc, FileNotFoundError)
            else (exc.strerror or str(exc))
        )
        print(f"corral: error: {argv[0]}: {reason}", file=sys.stderr)
        return exec_failure_code(exc)
    return code


# -- check --------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    """Exactly the validation `start` runs (same options, same files), then report."""
    plan = make_plan(args)
    print(f"Valid procfile detected ({', '.join(plan.kinds)})", file=sys.stderr)
    return 0


# -- export -------------------------------------------------------------------


def export(args: argparse.Namespace) -> int:
    from corral import export as exporters

    project = load_project(args)
    entries = procfile.load(project.procfile, project.procfile_shown)
    known = [e.name for e in entries]
    root = project.root.resolve()
    app_name = args.app or root.name or "app"
    env_text = args.env or project.os_env.get("CORRAL_ENV")
    names = formation.parse_names([env_text]) if env_text else [envfiles.DEFAULT_ENV_FILE]
    # os.path.isfile: False, not PermissionError, where the user may not look;
    # envfiles.load has already reported a named file it could not read
    env_files = [(root / n).resolve() for n in names if os.path.isfile(root / n)]
    settings, probe_timeout = lifecycle_settings(project, args)
    ctx = exporters.ExportContext(
        app=app_name,
        entries=entries,
        counts=formation.parse_counts(args.concurrency or [], known),
        base_port=_port(project, args.port),
        env=project.dotenv,
        env_files=env_files,
        app_root=root,
        log_dir=args.log or f"/var/log/{app_name}",
        user=args.user or app_name,
        shell=args.shell or "/bin/sh",
        timeout=_timeout(project, args.timeout),
        template_dir=Path(args.template_dir) if args.template_dir else None,
        image=args.image,
        secret=args.k8s_secret,
        policies=lifecycle.policies(settings, known, probe_timeout),
        restart_given=frozenset(k for k in known if "restart" in settings.processes.get(k, {})),
    )
    files = exporters.render(args.format, ctx)
    exporters.write(files, Path(args.location))
    for f in files:
        print(f"wrote {Path(args.location) / f.path}", file=sys.stderr)
    return 0
