"""`corral export FORMAT LOCATION`: turn the Procfile into files for a process
manager: systemd, supervisord, runit, compose (docker-compose) or kubernetes (k8s).

This package owns rendering and writing; `corral.app` builds the
`ExportContext` from the options.  `render` is pure (it only reads the user's
templates, `-t`); `write` puts the files under LOCATION.

Rules every format follows (each fixes a bug seen in foreman or honcho output):

* the command runs as `<shell> -c 'exec <command>'`: the shell expands `$PORT`
  and the .env values, and `exec` makes the app itself the supervised process;
* PORT is `base + 100 * (index of the type in the Procfile) + (n - 1)` as in
  `corral start`; per-instance formats also set PS and HONCHO_PROCESS_NAME
  (`web.1`); those three override the same names from .env;
* every .env value reaches the process byte for byte, whatever it holds
  (spaces, quotes, `%`, `$`, `#`, `;`, `=`, backslashes, newlines): each format
  module escapes for its syntax, and a value a format cannot hold natively is
  exported by the wrapper shell instead (see `supervisord`, `runit`);
* variable names must be `[A-Za-z_][A-Za-z0-9_]*` (a clear error otherwise).

Restart policy: until per-type lifecycle settings exist, every type gets
`on-failure`: restarted after a crash or a non-zero exit, left stopped after a
clean exit 0 (systemd `Restart=on-failure`, supervisord
`autorestart=unexpected` + `exitcodes=0`, compose `restart: on-failure`, runit
a `finish` script that marks the service down after exit 0; Kubernetes
Deployments always restart).  `ExportContext.settings` is where per-type
settings go.

Templates (`-t DIR`): see `corral.export.templates`.
"""

from __future__ import annotations

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
    other files in `location` are left alone.
    """
    if location.exists() and not location.is_dir():
        raise CorralError(f"{location}: exists and is not a directory")
    try:
        location.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CorralError(f"cannot create {location}: {exc.strerror}") from None
    for file in files:
        path = _target(location, file.path)
        if path.is_dir() and not path.is_symlink():
            raise CorralError(f"{path}: exists and is a directory")
        tmp = path.with_name(f".{path.name}.corral-tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(file.content)
            os.chmod(tmp, file.mode)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise CorralError(f"cannot write {path}: {exc.strerror}") from None
