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
    """A `.env` line python-dotenv cannot parse."""


class UsageError(CorralError):
    """A bad option value (`-c web`, an unknown process name, ...)."""
