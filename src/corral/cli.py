"""The command line: argparse in, `app` calls out, one-line errors.

honcho's command lines must keep working, so the global options (`-f -e -d
--no-colour --no-prefix`) are accepted before *or* after the subcommand: they
are defined on the main parser with defaults and again on each subcommand with
`SUPPRESS`, so a value given after the subcommand wins and no default
overwrites one given before it.

Options that matter in a container can also come from the environment (or the
`.env` file), so a Dockerfile can set them with `ENV`; precedence is command
line > `.env` > OS environment > default (see README, "Configuration").
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from corral import __version__, app, signals
from corral.errors import CorralError

PROG = "corral"


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line like every other corral error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    def d(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "-e",
        "--env",
        metavar="FILES",
        default=d(None),
        help="env file[,file...] (default: .env; env CORRAL_ENV)",
    )
    parser.add_argument(
        "-d",
        "--app-root",
        metavar="DIR",
        default=d(None),
        help="directory of the Procfile and .env, and the processes' "
        "working directory (default: .; env CORRAL_APP_ROOT)",
    )
    parser.add_argument(
        "-f",
        "--procfile",
        metavar="FILE",
        default=d(None),
        help="Procfile path (default: Procfile; env PROCFILE)",
    )
    parser.add_argument(
        "--no-colour",
        "--no-color",
        dest="no_colour",
        action="store_true",
        default=d(False),
        help="disable coloured output",
    )
    parser.add_argument(
        "--no-prefix",
        action="store_true",
        default=d(False),
        help="print bare lines, without time and name",
    )
    parser.add_argument("-v", "--version", action="version", version=f"{PROG} {__version__}")


def _lifecycle(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lifecycle (also in corral.toml; see README, Lifecycle)")
    add = group.add_argument
    add(
        "--oneshot",
        action="append",
        metavar="NAME[,NAME]",
        help="may exit 0 without stopping the others (env CORRAL_ONESHOT)",
    )
    add(
        "--restart",
        action="append",
        metavar="NAME=POLICY",
        help="no, on-failure or always, with back-off (env CORRAL_RESTART)",
    )
    add(
        "--after",
        action="append",
        metavar="NAME:DEP[+DEP]",
        help="start NAME once DEP is ready (one-shots: done) (env CORRAL_AFTER)",
    )
    add(
        "--ready",
        action="append",
        metavar="NAME=PROBE",
        help="readiness probe: tcp:PORT, http:URL, file:PATH, cmd:COMMAND, log:REGEX "
        "(env CORRAL_READY, ';'-separated)",
    )
    add(
        "--ready-timeout",
        metavar="SECONDS",
        help="how long a probe may take (default: 60; env CORRAL_READY_TIMEOUT)",
    )
    add(
        "--stop-signal",
        action="append",
        metavar="NAME=SIGNAL",
        help="signal that stops NAME, e.g. worker=INT (env CORRAL_STOP_SIGNAL)",
    )
    add(
        "--stop-timeout",
        action="append",
        metavar="NAME=SECONDS",
        help="grace period of NAME before SIGKILL (env CORRAL_STOP_TIMEOUT)",
    )
    add(
        "--no-release",
        action="store_true",
        default=None,
        help="do not run a 'release' entry first (env CORRAL_RELEASE=0)",
    )
    add(
        "--release-timeout",
        metavar="SECONDS",
        help="the release phase fails after this long (env CORRAL_RELEASE_TIMEOUT)",
    )


def _start_options(parser: argparse.ArgumentParser) -> None:
    """The options of `start`; `check` takes them too, to validate exactly what `start` would."""
    parser.add_argument(
        "processes",
        nargs="*",
        metavar="PROCESS",
        help="process types to start (default: all; env CORRAL_PROCESSES)",
    )
    parser.add_argument(
        "-c",
        "--concurrency",
        action="append",
        metavar="NAME=N[,NAME=N]",
        help="instances per type, e.g. web=2,worker=3 (env CORRAL_CONCURRENCY)",
    )
    parser.add_argument("-p", "--port", metavar="N", help="base port (default: 5000; env PORT)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="append",
        metavar="NAME[,NAME]",
        help="hide the output of these processes (env CORRAL_QUIET)",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        metavar="SECONDS",
        help="grace period before SIGKILL (default: 5; env CORRAL_TIMEOUT)",
    )
    parser.add_argument(
        "--no-timestamp",
        action="store_true",
        default=None,
        help="drop the time from the prefix (env CORRAL_NO_TIMESTAMP=1)",
    )
    parser.add_argument(
        "--colour",
        "--color",
        dest="colour",
        metavar="WHEN",
        help="auto, always or never (default: auto; env CORRAL_COLOUR)",
    )
    parser.add_argument(
        "--log-format", metavar="FORMAT", help="text or json (default: text; env CORRAL_LOG_FORMAT)"
    )
    parser.add_argument(
        "--tty",
        nargs="?",
        const="*",
        metavar="NAME[,NAME]",
        help="run processes on a pseudo-terminal: all, or --tty=web,worker (env CORRAL_TTY)",
    )
    parser.add_argument(
        "--split-stderr",
        action="store_true",
        default=None,
        help="text mode: children's stderr to corral's stderr (env CORRAL_SPLIT_STDERR=1)",
    )
    _lifecycle(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description="Run the processes of a Procfile.")
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    sub.required = True

    start = sub.add_parser(
        "start",
        help="start the application (or the given processes)",
        description="Start every Procfile process (or the given types).",
    )
    _common(start, suppress=True)
    _start_options(start)

    run = sub.add_parser(
        "run",
        help="run one command with the application's environment",
        description="Run CMD with the .env environment; exit with its code.",
    )
    _common(run, suppress=True)
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD ...")

    check = sub.add_parser(
        "check",
        help="validate the Procfile, .env files and settings",
        description="Validate everything `start` would, with the same options, and start nothing.",
    )
    _common(check, suppress=True)
    _start_options(check)

    export = sub.add_parser(
        "export", help="export to systemd, supervisord, runit, compose or kubernetes"
    )
    _common(export, suppress=True)
    export.add_argument(
        "format",
        metavar="FORMAT",
        help="systemd, supervisord, runit, compose (docker-compose) or kubernetes (k8s)",
    )
    export.add_argument("location", metavar="LOCATION", help="folder to write to")
    export.add_argument("-a", "--app", metavar="APP", help="app name (default: directory name)")
    export.add_argument("-l", "--log", metavar="DIR", help="log directory (default: /var/log/APP)")
    export.add_argument("-p", "--port", metavar="N", help="base port (default: 5000)")
    export.add_argument(
        "-c", "--concurrency", action="append", metavar="NAME=N[,NAME=N]", help="instances per type"
    )
    export.add_argument("-u", "--user", metavar="USER", help="user to run as (default: APP)")
    export.add_argument("-s", "--shell", metavar="SHELL", help="shell (default: /bin/sh)")
    export.add_argument(
        "-t",
        "--template-dir",
        metavar="DIR",
        help="directory of templates that override the built-in ones",
    )
    export.add_argument(
        "-T", "--timeout", metavar="SECONDS", help="grace period before SIGKILL (default: 5)"
    )
    export.add_argument("--image", metavar="IMAGE", help="container image (compose, kubernetes)")
    export.add_argument(
        "--k8s-secret",
        action="store_true",
        help="kubernetes: put the .env in a Secret, not a ConfigMap",
    )
    _lifecycle(export)

    sub.add_parser("version", help="print the version")
    help_ = sub.add_parser("help", help="describe the commands, or one command")
    help_.add_argument("task", nargs="?", metavar="COMMAND")
    parser.set_defaults(_subparsers=sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        signals.accept_early_stop()
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command not in ("start", "run") and signals.early_mask is not None:
            # corral.boot held signals during the imports; only the supervisor
            # (start, run) takes them over, everything else gets the defaults back
            signal.pthread_sigmask(signal.SIG_SETMASK, signals.early_mask)
        if args.command == "version":
            print(f"{PROG} {__version__}")
            return 0
        if args.command == "help":
            return _help(parser, args._subparsers, args.task)
        return app.main(args)
    except CorralError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    except signals.Interrupted as stop:
        return 128 + stop.signum


def _help(
    parser: argparse.ArgumentParser,
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    task: str | None,
) -> int:
    if task is None:
        parser.print_help()
        return 0
    choices = sub.choices
    if task not in choices:
        raise CorralError(f"help: unknown command {task!r} (commands: {', '.join(choices)})")
    choices[task].print_help()
    return 0
