"""Errors that reach the user as one line on stderr and a non-zero exit.

Everything a user can get wrong (a Procfile line, a `.env` file, an option value)
raises a `CorralError` subclass carrying the text to show; `cli` prints it as
`corral: error: <text>` and exits 1.  Anything else is a bug and may traceback.
"""

from __future__ import annotations


class CorralError(Exception):
    """A user-facing error; `str(err)` is the whole message."""

    exit_code = 1


class FileLineError(CorralError):
    """An error at a line of a file: rendered `path:line: message`."""

    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path = path
        self.lineno = lineno
        self.message = message
        super().__init__(f"{path}:{lineno}: {message}")


class ProcfileError(FileLineError):
    """A Procfile line that is not `name: command`, or a duplicate name."""


class EnvFileError(FileLineError):
    """A `.env` line that is not `KEY=value` in the dotenv dialect, or a value no
    process could receive (named by file, line, column and key, never by value)."""


class UsageError(CorralError):
    """A bad option value (`-c web`, an unknown process name, ...)."""


EXCERPT_LIMIT = 60


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """`text` quoted for a one-line message: repr() escapes control characters
    and line breaks, and anything past `limit` characters becomes `...`, so a
    200 KB line (or a secret on it) is never echoed whole."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"
