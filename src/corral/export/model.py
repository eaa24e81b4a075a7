"""The data every exporter consumes and produces: `ExportContext` in, `File`s out.

Kept apart from `corral.export` itself so that the per-format modules can import
these types without importing the package that imports them.  Nothing here does
I/O; `ExportContext` is built by the CLI (`corral.app`) from the options, the
Procfile and the `.env` files.

`ProcessSettings` is the per-process-type lifecycle seam: today it only carries
the restart policy (default `on-failure`, see the package docstring); one-shot
processes, readiness checks and dependencies are meant to be added here, with
defaults that keep today's output unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from corral.procfile import Entry

Restart = Literal["on-failure", "always", "no"]
DEFAULT_RESTART: Restart = "on-failure"


@dataclass(frozen=True)
class ProcessSettings:
    """Lifecycle settings of one process type.

    restart: `on-failure` (restart after a non-zero exit or a crash, leave a
             clean exit 0 alone), `always`, or `no`.
    """

    restart: Restart = DEFAULT_RESTART


DEFAULT_SETTINGS = ProcessSettings()


@dataclass(frozen=True)
class ExportContext:
    """Everything an exporter needs; see `corral export --help` for the options."""

    app: str  # app name (-a; default: basename of app root)
    entries: Sequence[Entry]  # Procfile entries, in Procfile order
    counts: Mapping[str, int]  # concurrency per type; missing => 1; 0 => not exported/replicas 0
    base_port: int  # -p, default 5000
    env: Mapping[str, str]  # values from the .env files ONLY (not os.environ)
    env_files: Sequence[Path]  # absolute paths of the .env files that were read
    app_root: Path  # absolute app directory (working dir of the processes)
    log_dir: str  # -l, default /var/log/<app>
    user: str  # -u, default <app>
    shell: str  # -s, default /bin/sh
    timeout: float  # grace period in seconds before SIGKILL (default 5)
    template_dir: Path | None  # -t: user templates override built-in ones
    image: str | None = None  # compose/k8s image (--image)
    secret: bool = False  # k8s: Secret instead of ConfigMap (--k8s-secret)
    # Per-type lifecycle settings; a type not listed gets `ProcessSettings()`.
    settings: Mapping[str, ProcessSettings] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        """Concurrency of a process type (1 unless given)."""
        return self.counts.get(kind, 1)

    def settings_for(self, kind: str) -> ProcessSettings:
        """Lifecycle settings of a process type."""
        return self.settings.get(kind, DEFAULT_SETTINGS)


@dataclass(frozen=True)
class File:
    """One file to write, relative to the export LOCATION."""

    path: str  # relative to LOCATION, may contain sub-directories (runit)
    content: str
    mode: int = 0o644
