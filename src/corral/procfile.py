"""The Procfile: `name: command` lines, in order.

Owns parsing and nothing else: it knows no processes, ports or environment.
Unlike honcho (which silently skips what its regex does not match), every
non-blank, non-comment line must be an entry; anything else is an error naming
the file and line, because a silently skipped process is a production outage.
Names follow honcho/foreman (`[A-Za-z0-9_-]+`); the command is kept verbatim for
`/bin/sh -c`, so a trailing `# ...` belongs to the shell, as in honcho.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError, ProcfileError

NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
# `name: command`; the name part is checked separately for a precise message.
ENTRY_RE = re.compile(r"^([^:]*):(.*)$")


@dataclass(frozen=True)
class Entry:
    """One Procfile line: a process type and its shell command."""

    name: str
    command: str
    lineno: int


def parse(text: str, path: str = "Procfile") -> list[Entry]:
    """Parse Procfile text; raise `ProcfileError` on the first bad line."""
    if text.startswith("\ufeff"):
        text = text[1:]
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    # split("\n") rather than splitlines(): a stray \r or \f inside a command
    # must not invent a new line; CRLF endings are handled by rstrip below.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = ENTRY_RE.match(line)
        if match is None:
            raise ProcfileError(path, lineno, f'expected "name: command", got {stripped!r}')
        name, command = match.group(1), match.group(2).strip()
        # honcho silently skips the next two; a skipped process is an outage
        if name != name.lstrip():
            raise ProcfileError(path, lineno, f"entry {name.strip()!r} must not be indented")
        if name != name.rstrip():
            raise ProcfileError(path, lineno, f"no space allowed before ':' after {name.strip()!r}")
        if not NAME_RE.fullmatch(name):
            raise ProcfileError(
                path,
                lineno,
                f"invalid process name {name!r} (use letters, digits, '_' and '-')",
            )
        if not command:
            raise ProcfileError(path, lineno, f"process {name!r} has no command")
        if name in seen:
            raise ProcfileError(
                path, lineno, f"duplicate process name {name!r} (first on line {seen[name]})"
            )
        seen[name] = lineno
        entries.append(Entry(name, command, lineno))
    if not entries:
        raise CorralError(f"{path}: no processes defined")
    return entries


def load(path: Path, shown: str | None = None) -> list[Entry]:
    """Read and parse a Procfile; `shown` is the name used in messages."""
    label = shown or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CorralError(f"{label}: no such file (use -f to name the Procfile)") from None
    except IsADirectoryError:
        raise CorralError(f"{label}: is a directory, not a Procfile") from None
    except OSError as exc:
        raise CorralError(f"{label}: cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise ProcfileError(label, lineno, "not valid UTF-8") from None
    return parse(text, label)
