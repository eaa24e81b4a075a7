"""`corral export FORMAT LOCATION`: turn the Procfile into files for a process
manager: systemd, supervisord, runit, compose (docker-compose) or kubernetes (k8s).

This package owns rendering and writing; `corral.app` builds the
`ExportContext` from the options.  `render` is pure (it only reads the user's
templates, `-t`); `write` puts the files under LOCATION.

Rules every format follows (each fixes a bug seen in foreman or honcho output):

* the command runs as `<shell> -c '<command>'`, so the shell expands `$PORT`
  and the .env values.  A *simple* command (one command with its arguments
  and redirections, see `corral.shell.simple_command`; the check is conservative)
  is prefixed with `exec`, which makes the app itself the supervised process.
  Anything else (`cd x && cmd`, `FOO=1 cmd`, `a; b`, a pipeline, a first word
  that is a shell keyword or a builtin such as `cd` or `export`) runs as
  written, since `exec` would break it, and the shell stays in between; each
  format then signals the whole group: systemd `KillMode=control-group`
  (`mixed` for an exec'd command), supervisord `stopasgroup`/`killasgroup`,
  runit `control/t` and `control/k` on a `chpst -P` process group.  In
  compose and Kubernetes the shell is the container's PID 1, which ignores
  SIGTERM: such a container is only killed at the end of its grace period
  (write `cd x && exec cmd`, or run an init such as `init: true`);
* each instance gets the PORT, PS and HONCHO_PROCESS_NAME (`web.1`) that
  `corral start` gives it, from the same code (`corral.formation`: a
  `release` entry takes no port slot); the per-type formats (compose,
  Kubernetes) set instance 1's PORT in every replica; those names override
  the same names from .env;
* every .env value reaches the process byte for byte, whatever it holds
  (spaces, quotes, `%`, `$`, `#`, `;`, `=`, backslashes, newlines): each format
  module escapes for its syntax, and a value a format cannot hold natively is
  exported by the wrapper shell instead (see `supervisord`, `runit`);
* variable names must be `[A-Za-z_][A-Za-z0-9_]*` (a clear error otherwise).

Lifecycle settings (`corral.toml`, `[tool.corral]`, `--oneshot`, `--restart`,
`--after`, `--ready`, `--stop-signal`, `--stop-timeout`, `--no-release`,
`--release-timeout`, `--ready-timeout` and their `CORRAL_*` variables, read
exactly as `corral start` reads them) arrive as the `corral.specs.Policy` of
each type, the release rule applied (a `release` entry is a one-shot every
other type is `after`).  Where a target has no equivalent the setting is left
out (the systemd, compose and Kubernetes files say so in a comment):

restart (a type whose restart policy is *not* set)
    `on-failure`, as a process manager is expected to: restarted after a crash
    or a non-zero exit, left stopped after exit 0; a one-shot: `no`.
    systemd `Restart=on-failure`, supervisord `autorestart=unexpected` +
    `exitcodes=0`, compose `restart: on-failure`, runit a `finish` script
    that marks the service down after exit 0; Kubernetes Deployments always
    restart (the only policy they allow).
restart (set: `no`, `on-failure`, `always`, with its table)
    that mode.  systemd: `Restart=`, `RestartSec=` = delay,
    `StartLimitIntervalSec=` = window and `StartLimitBurst=` = limit + 1 (it
    counts the first start too); the exponential part (max_delay) and
    reset_after need systemd 254 (`RestartSteps=`) and are left out.
    supervisord: `autorestart=`, `startretries=` = limit (it only counts
    starts that fail within `startsecs`; its back-off is its own).  compose:
    `restart:` only (`docker compose up` ignores `deploy.restart_policy`'s
    delay and window; the engine has its own back-off).  runit: `finish`
    (runsv waits 1 s between restarts; no limit).  Kubernetes Jobs:
    `backoffLimit` = limit.  A one-shot's `always` cannot be expressed where
    others wait for its completion: systemd, compose and Kubernetes export it
    as `on-failure`, noting it.
one-shot (and `release`)
    systemd `Type=oneshot` + `RemainAfterExit=yes` (its run timeout:
    `TimeoutStartSec=`); supervisord `autorestart=false` + `startsecs=0`
    (whatever the restart setting: supervisord would restart a failing
    one-shot forever); compose `restart: "no"`; Kubernetes a Job instead of a
    Deployment (`restartPolicy: Never`, `backoffLimit: 0`, or `OnFailure`
    when a restart policy is set; run timeout: `activeDeadlineSeconds`);
    runit a `finish` that keeps it down once it exited.
after
    systemd `After=` + `Requires=` on every instance unit of each dependency
    (a failed dependency keeps its dependents from starting, as in corral);
    compose `depends_on` with `service_completed_successfully` (one-shot),
    `service_healthy` (a dependency with a probe), else `service_started`;
    supervisord has no order: `priority=` starts the dependencies first
    (100, 200, ... by dependency level) without waiting for them; runit and
    Kubernetes have none (the Kubernetes file lists what is not exported).
    As in `corral start`, a dependency scaled to 0 is not waited for.
ready (a readiness probe; see `commands.probe_command` for the shell checks)
    systemd: an `ExecStartPost=` loop running the check every interval,
    bounded by `TimeoutStartSec=` = the probe timeout (units after it start
    once it passed); compose: a `healthcheck` (`CMD-SHELL`; tcp uses `nc -z`
    or bash's /dev/tcp, http curl, wget or python3, so the image needs one of
    them) checked every interval, `retries` = timeout / interval; Kubernetes:
    `readinessProbe` (`tcpSocket`, `httpGet`, or `exec` for file/cmd),
    which gates Service traffic but has no overall timeout.  A `log:` probe
    watches output only corral sees: it is not exported anywhere.
    supervisord and runit have no readiness.
stop_signal, stop_timeout
    systemd `KillSignal=`, `TimeoutStopSec=`; supervisord `stopsignal=`,
    `stopwaitsecs=`; compose `stop_signal`, `stop_grace_period`; runit:
    `control/t` sends the signal to the process group, and the grace period
    is the `sv -w` of the `run` script's comment; Kubernetes:
    `terminationGracePeriodSeconds` only (no per-container stop signal: use
    the image's STOPSIGNAL).

Templates (`-t DIR`): see `corral.export.templates`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from corral.errors import CorralError
from corral.export import compose, kubernetes, runit, supervisord, systemd
from corral.export.model import DEFAULT_RESTART, ExportContext, File, Restart

__all__ = [
    "DEFAULT_RESTART",
    "FORMATS",
    "ExportContext",
    "File",
    "Restart",
    "render",
    "write",
]

Renderer = Callable[[ExportContext], list[File]]

CANONICAL: Mapping[str, Renderer] = {
    "systemd": systemd.render,
    "supervisord": supervisord.render,
    "runit": runit.render,
    "compose": compose.render,
    "kubernetes": kubernetes.render,
}
ALIASES: Mapping[str, str] = {"docker-compose": "compose", "k8s": "kubernetes"}
FORMATS: Mapping[str, Renderer] = {
    **CANONICAL,
    **{alias: CANONICAL[name] for alias, name in ALIASES.items()},
}


def render(fmt: str, ctx: ExportContext) -> list[File]:
    """The files of export format `fmt` (a name or an alias)."""
    try:
        renderer = FORMATS[fmt]
    except KeyError:
        names = ", ".join(
            f"{name} (or {alias})" if alias else name
            for name in CANONICAL
            for alias in [next((a for a, n in ALIASES.items() if n == name), "")]
        )
        raise CorralError(f"unknown export format {fmt!r} (choose from: {names})") from None
    return renderer(ctx)


def _target(location: Path, relative: str) -> Path:
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"export file path must stay inside LOCATION: {relative!r}")
    return location.joinpath(*parts)


def write(files: Sequence[File], location: Path) -> None:
    """Write `files` under `location`, creating it and sub-directories as needed.

    Existing files of the same names are replaced (atomically, file by file);
    other files in `location` are left alone.  Each file gets exactly its
    `File.mode`, whatever the umask: owner-only (`model.PRIVATE`) for a file
    that carries `.env` values, and it is created owner-only before any byte
    is written.  Any failure of the file system
    (no permission, a full disk) is one `CorralError` naming the path.
    """
    try:
        _write(files, location)
    except OSError as exc:
        where = exc.filename or location
        raise CorralError(f"cannot write {where}: {exc.strerror or exc}") from None


def _write(files: Sequence[File], location: Path) -> None:
    if location.exists() and not location.is_dir():
        raise CorralError(f"{location}: exists and is not a directory")
    location.mkdir(parents=True, exist_ok=True)
    for file in files:
        path = _target(location, file.path)
        if path.is_dir() and not path.is_symlink():
            raise CorralError(f"{path}: exists and is a directory")
        tmp = path.with_name(f".{path.name}.corral-tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # created owner-only, so a secret is never readable, not even
            # before the chmod; then exactly the file's mode, whatever the umask
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(file.content)
            os.chmod(tmp, file.mode)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise
