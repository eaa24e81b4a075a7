"""`.env` files: which ones to read, and what they contain.

The dialect is python-dotenv's (the same as docker-compose and most tools:
`export KEY=`, single and double quotes with their escapes, multi-line quoted
values, `# comments`, `${VAR}` and `${VAR:-default}` interpolation).  The
parser is our own, written to that grammar and checked against python-dotenv
by a differential property test (tests/unit/test_env.py), because a `.env`
holds secrets and python-dotenv's parser does not fit that:

* a line it cannot parse is only logged and skipped; here it is an error
  naming the file, the line, the column and the key when one can be
  recognised -- never the line itself, which would print the secret on it;
* its inline-comment stripping is quadratic in the length of a run of blanks
  (a 40 KB line takes 16 s); here every step is linear;
* nothing stops values that no process could receive: a NUL byte, a key that
  is not an environment name (empty, or holding `=`, a blank or a control
  character), or a value too big for `execve`.

Size bounds, so that a small file cannot make corral allocate gigabytes by
referencing a value twice in each of 20 lines (`${}` doubles it each time):
one `KEY=value` may hold at most 128 KiB once expanded -- Linux's
MAX_ARG_STRLEN, the most one environment string can hold in `execve`, so a
bigger value could never reach a child anyway -- and all the values of the
`.env` files together at most 2 MiB, the default ARG_MAX (an 8 MiB stack / 4),
beyond which every spawn would fail with E2BIG.  Both are checked before the
expanded value is built.

A file named explicitly with `-e` must exist, while the default `.env` may be
absent (honcho ignores missing files silently, honcho#196).  Interpolation
sees the OS environment and the files read so far, so a later file can build
on an earlier one; a file's own earlier keys beat the OS environment.  A bare
`KEY` line (no `=`) sets nothing.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Iterator, Mapping
from pathlib import Path

from corral.errors import CorralError, EnvFileError, excerpt

DEFAULT_ENV_FILE = ".env"
MAX_VALUE_BYTES = 128 * 1024  # MAX_ARG_STRLEN: one `KEY=value` string with its NUL
MAX_TOTAL_BYTES = 2 * 1024 * 1024  # the default ARG_MAX

# The grammar, token by token.  "Blank" is any whitespace but a line break.
_SPACE = re.compile(r"\s*")  # blank lines and indentation before a binding
_EXPORT = re.compile(r"export[^\S\r\n]+")
_QUOTED_KEY = re.compile(r"'([^']+)'")
_PLAIN_KEY = re.compile(r"[^=#\s]+")
_BLANKS = re.compile(r"[^\S\r\n]*")
_EQUALS = re.compile(r"=[^\S\r\n]*")
_SINGLE_QUOTED = re.compile(r"'((?:\\.|[^\\'])*)'", re.DOTALL)
_DOUBLE_QUOTED = re.compile(r'"((?:\\.|[^\\"])*)"', re.DOTALL)
_REST_OF_LINE = re.compile(r"[^\r\n]*")
_INLINE_COMMENT = re.compile(r"\s#")  # in an unquoted value: blank(s) then `#`
_TRAILER = re.compile(r"[^\S\r\n]*(?:#[^\r\n]*)?[^\S\r\n]*(?:\r\n|\n|\r|$)")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_VARIABLE = re.compile(r"\$\{([^}:]*)(?::-([^}]*))?\}")
_SINGLE_ESCAPES = re.compile(r"\\[\\']")
_DOUBLE_ESCAPES = re.compile(r"\\[\\'\"abfnrtv]")
_ESCAPED = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def _unescape(pattern: re.Pattern[str], text: str) -> str:
    return pattern.sub(lambda m: _ESCAPED[m.group()[1]], text)


class _Source:
    """The text of one file and how to turn an offset into `path:line: ... (column N)`."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path

    def error(self, pos: int, message: str, column: bool = True) -> EnvFileError:
        line = 1 + len(_LINE_BREAK.findall(self.text, 0, pos))
        if column:
            start = max(self.text.rfind("\n", 0, pos), self.text.rfind("\r", 0, pos)) + 1
            message = f"{message} (column {pos - start + 1})"
        return EnvFileError(self.path, line, message)


def _bindings(src: _Source) -> Iterator[tuple[str, int, str | None, int]]:
    """(key, its offset, raw value or None for a bare `KEY`, the value's offset).

    Raises `EnvFileError` at the first syntax error; messages name the key only
    once it is known to be one (followed by `=`), and never show a value.
    """
    text = src.text
    pos = 0
    while True:
        pos = _match(_SPACE, text, pos).end()
        if pos >= len(text):
            return
        export = _EXPORT.match(text, pos)
        if export:
            pos = export.end()
        key_pos = pos
        key: str | None = None
        if text.startswith("#", pos):
            pass  # a comment line
        elif text.startswith("'", pos):
            quoted = _QUOTED_KEY.match(text, pos)
            if quoted is None:
                raise src.error(pos, "a quoted key must be closed and not empty")
            key, pos = quoted.group(1), quoted.end()
        else:
            plain = _PLAIN_KEY.match(text, pos)
            if plain is None:  # only `=` can be here
                raise src.error(pos, "empty variable name before '='")
            key, pos = plain.group(), plain.end()
        pos = _match(_BLANKS, text, pos).end()
        value: str | None = None
        value_pos = pos
        if key is not None and text.startswith("=", pos):
            equals = _match(_EQUALS, text, pos)
            pos = value_pos = equals.end()
            if len(equals.group()) > 1 and text.startswith("#", pos):
                value = ""  # `KEY= # comment`
            else:
                value, pos = _value(src, key, pos)
        trailer = _TRAILER.match(text, pos)
        if trailer is None:
            if value is None:
                raise src.error(pos, "expected KEY=VALUE (a name, then '=')")
            raise src.error(pos, f"{excerpt(key or '')}: unexpected text after the closing quote")
        pos = trailer.end()
        if key is not None:
            yield key, key_pos, value, value_pos


def _value(src: _Source, key: str, pos: int) -> tuple[str, int]:
    """The value starting at `pos` (after `=`) and where it ends."""
    text = src.text
    quote = text[pos : pos + 1]
    if quote in ("'", '"'):
        found = (_SINGLE_QUOTED if quote == "'" else _DOUBLE_QUOTED).match(text, pos)
        if found is None:
            kind = "single" if quote == "'" else "double"
            raise src.error(pos, f"{excerpt(key)}: the value's {kind} quote is never closed")
        escapes = _SINGLE_ESCAPES if quote == "'" else _DOUBLE_ESCAPES
        return _unescape(escapes, found.group(1)), found.end()
    rest = _match(_REST_OF_LINE, text, pos)
    value = rest.group()
    comment = _INLINE_COMMENT.search(value)
    if comment:
        value = value[: comment.start()]
    return value.rstrip(), rest.end()


def _match(pattern: re.Pattern[str], text: str, pos: int) -> re.Match[str]:
    """A match of a pattern that matches the empty string, so always matches."""
    found = pattern.match(text, pos)
    assert found is not None
    return found


def _bad_key(key: str) -> str | None:
    """Why `key` cannot be an environment variable name (None if it can)."""
    if "=" in key:
        return "contains '='"
    if "\0" in key:
        return "contains a NUL byte"
    if not key.isprintable() or any(c.isspace() for c in key):
        return "contains a blank or a control character"
    return None


def _size(key: str, value: str) -> int:
    """Bytes of `KEY=value` and its NUL in a process's environment."""
    return (
        len(key.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass")) + 2
    )


def _expand(src: _Source, key: str, key_pos: int, raw: str, scope: Mapping[str, str]) -> str:
    """`raw` with `${VAR}` / `${VAR:-default}` replaced, refusing to build a
    value bigger than MAX_VALUE_BYTES (its length is summed first)."""
    if "${" not in raw:
        parts = [raw]
    else:
        parts = []
        end = 0
        for ref in _VARIABLE.finditer(raw):
            parts.append(raw[end : ref.start()])
            default = ref.group(2)
            parts.append(scope.get(ref.group(1), "" if default is None else default))
            end = ref.end()
        parts.append(raw[end:])
    # characters <= bytes: a sum over the limit needs no encoding to be refused
    if len(key) + sum(len(p) for p in parts) + 2 > MAX_VALUE_BYTES:
        raise _too_big(src, key, key_pos)
    value = "".join(parts)
    if _size(key, value) > MAX_VALUE_BYTES:
        raise _too_big(src, key, key_pos)
    return value


def _too_big(src: _Source, key: str, pos: int) -> EnvFileError:
    return src.error(
        pos,
        f"{excerpt(key)}: the value is over {MAX_VALUE_BYTES // 1024} KiB once ${{...}} is "
        "expanded, more than one environment variable can hold",
        column=False,
    )


def parse(
    text: str,
    path: str,
    context: Mapping[str, str] | None = None,
    *,
    prior: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Parse `.env` text into its values, `${VAR}` references resolved.

    A reference sees the file's earlier keys, then `context` (the OS
    environment and earlier files).  `prior` holds the values of earlier
    files that this one overlays: they count towards MAX_TOTAL_BYTES.
    """
    src = _Source(text.removeprefix("\ufeff"), path)
    values: dict[str, str] = {}
    scope = ChainMap(values, dict(context or {}))
    earlier = prior or {}
    total = sum(_size(k, v) for k, v in earlier.items())
    for key, key_pos, raw, value_pos in _bindings(src):
        problem = _bad_key(key)
        if problem is not None:
            if raw is None:  # not even `KEY=`: it may be anything, show nothing
                raise src.error(key_pos, "expected KEY=VALUE (a name, then '=')")
            raise src.error(key_pos, f"{excerpt(key)}: not a valid variable name ({problem})")
        if raw is None:
            continue  # a bare `KEY` sets nothing
        if "\0" in raw:
            raise src.error(
                src.text.index("\0", value_pos), f"{excerpt(key)}: the value contains a NUL byte"
            )
        value = _expand(src, key, key_pos, raw, scope)
        if "\0" in value:  # only from `context`, which an API caller gave
            raise src.error(key_pos, f"{excerpt(key)}: the value contains a NUL byte")
        replaced = values[key] if key in values else earlier.get(key)
        if replaced is not None:
            total -= _size(key, replaced)
        total += _size(key, value)
        if total > MAX_TOTAL_BYTES:
            raise src.error(
                key_pos,
                f"{excerpt(key)}: the .env values add up to over "
                f"{MAX_TOTAL_BYTES // (1024 * 1024)} MiB once ${{...}} is expanded, "
                "more than a process environment can hold",
                column=False,
            )
        values[key] = value
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
            data = path.read_bytes()
        except FileNotFoundError:
            if explicit:
                raise CorralError(f"{shown}: env file not found") from None
            continue
        except IsADirectoryError:
            raise CorralError(f"{shown}: is a directory, not an env file") from None
        except OSError as exc:
            raise CorralError(f"{shown}: cannot read env file: {exc.strerror}") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = data.count(b"\n", 0, exc.start) + 1
            raise EnvFileError(shown, lineno, "not valid UTF-8") from None
        merged.update(parse(text, shown, {**base, **merged}, prior=merged))
    return merged
