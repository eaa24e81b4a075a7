"""`.env` files: which ones to read, and what they contain.

Parsing is python-dotenv's (the same dialect as docker-compose and most tools:
`export KEY=`, quotes, multi-line quoted values, `${VAR}` interpolation); this
module adds the two things it does not do:

* a line python-dotenv cannot parse is an error naming the file and line
  (python-dotenv only logs a warning and skips it);
* a file named explicitly with `-e` must exist, while the default `.env` may be
  absent (honcho ignores missing files silently, honcho#196).

Interpolation sees the OS environment and the files read so far, so a later
file can build on an earlier one.  A bare `KEY` line (no `=`) sets nothing.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from corral.errors import CorralError, EnvFileError

DEFAULT_ENV_FILE = ".env"


def parse(text: str, path: str, context: Mapping[str, str] | None = None) -> dict[str, str]:
    """Parse `.env` text; `context` supplies values for `${VAR}` references.

    Values are interpolated as python-dotenv's `dotenv_values` does with
    `override=True` (earlier keys of the file beat `context`), but against
    `context` instead of `os.environ`, so later `-e` files see earlier ones.
    """
    # imported here: python-dotenv pulls in logging, tempfile and shutil, which
    # an app without a .env file need not pay for (memory and start-up time)
    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            text = binding.original.string
            # the binding's text starts with the blank lines before it
            lineno = binding.original.line + text[: len(text) - len(text.lstrip())].count("\n")
            lines = text.strip().splitlines() or [""]
            raise EnvFileError(path, lineno, f"cannot parse {lines[0]!r}")
        if binding.key is None or binding.value is None:
            continue  # a comment, a blank line, or a bare `KEY` with no value
        scope = {**(context or {}), **values}
        values[binding.key] = "".join(a.resolve(scope) for a in parse_variables(binding.value))
    return values


def load(root: Path, names: list[str], explicit: bool, base: Mapping[str, str]) -> dict[str, str]:
    """Read the env files `names` (relative to `root`), later files winning.

    `explicit` is True when the user named the files (`-e`, `CORRAL_ENV`); then
    a missing file is an error.  `base` (the OS environment) is visible to
    `${VAR}` interpolation but not part of the result.
    """
    merged: dict[str, str] = {}
    for name in names:
        path = root / name
        shown = name if not Path(name).is_absolute() else str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if explicit:
                raise CorralError(f"{shown}: env file not found") from None
            continue
        except UnicodeDecodeError:
            raise CorralError(f"{shown}: env file is not valid UTF-8") from None
        except OSError as exc:
            raise CorralError(f"{shown}: cannot read env file: {exc.strerror}") from None
        merged.update(parse(text, shown, {**base, **merged}))
    return merged
