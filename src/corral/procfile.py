"""The Procfile: `name: command` lines, in order.

Owns parsing and nothing else: it knows no processes, ports or environment.
Unlike honcho (which silently skips what its regex does not match), every
non-blank, non-comment line must be an entry; anything else is an error naming
the file and line, because a silently skipped process is a production outage.
Names follow honcho/foreman (`[A-Za-z0-9_-]+`); the command is kept verbatim for
`/bin/sh -c`, so a trailing `# ...` belongs to the shell, as in honcho.

Everything that would only fail later is rejected here, at load time, so that
`corral check` catches it and `corral start` never starts half a formation: a
command holding a NUL byte (it cannot be passed to exec), and the shell habit
of continuing a line with a trailing backslash (a Procfile has no line
continuation: the next line is reported as such, not as a bad entry).  Input
quoted in a message goes through `excerpt`: one line, at most ~60 characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from corral.errors import CorralError, ProcfileError, excerpt

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
    continued: Entry | None = None  # the entry on the previous line, if it ends with `\`
    # split("\n") rather than splitlines(): a stray \r or \f inside a command
    # must not invent a new line; CRLF endings are handled by rstrip below.
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        previous, continued = continued, None
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entry = _entry(line, lineno, path)
        except ProcfileError:
            if previous is not None:
                raise ProcfileError(
                    path,
                    previous.lineno,
                    f"process {previous.name!r} ends with '\\' but a Procfile has no line "
                    f"continuation (line {lineno} is not an entry): write the command on one "
                    "line, or put it in a script and run that",
                ) from None
            raise
        if entry.name in seen:
            raise ProcfileError(
                path,
                lineno,
                f"duplicate process name {excerpt(entry.name)} (first on line {seen[entry.name]})",
            )
        seen[entry.name] = lineno
        entries.append(entry)
        if entry.command.endswith("\\"):
            continued = entry
    if not entries:
        raise CorralError(f"{path}: no processes defined")
    return entries


def _entry(line: str, lineno: int, path: str) -> Entry:
    """The entry on one non-blank, non-comment line."""
    match = ENTRY_RE.match(line)
    if match is None:
        raise ProcfileError(path, lineno, f'expected "name: command", got {excerpt(line.strip())}')
    name, command = match.group(1), match.group(2).strip()
    # honcho silently skips the next two; a skipped process is an outage
    if name != name.lstrip():
        raise ProcfileError(path, lineno, f"entry {excerpt(name.strip())} must not be indented")
    if name != name.rstrip():
        raise ProcfileError(
            path, lineno, f"no space allowed before ':' after {excerpt(name.strip())}"
        )
    if not NAME_RE.fullmatch(name):
        raise ProcfileError(
            path,
            lineno,
            f"invalid process name {excerpt(name)} (use letters, digits, '_' and '-')",
        )
    if not command:
        raise ProcfileError(path, lineno, f"process {excerpt(name)} has no command")
    if "\0" in command:
        raise ProcfileError(
            path,
            lineno,
            f"process {excerpt(name)}: the command contains a NUL byte "
            f"(column {line.index(chr(0)) + 1}), which cannot be passed to /bin/sh",
        )
    return Entry(name, command, lineno)


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
