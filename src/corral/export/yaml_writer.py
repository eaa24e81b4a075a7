"""A small YAML writer for the compose and Kubernetes exports.

corral has no YAML dependency at runtime, and the exports only need block
mappings, block sequences, integers, booleans and strings.  Owned here so that
all quoting is in one place: every string value (and every key that is not a
plain identifier) is a double-quoted scalar, escaped so that YAML 1.1 and 1.2
parsers read back exactly the same text: control characters, `"`, `\\`, and the
characters YAML 1.1 takes for line breaks (U+0085, U+2028, U+2029) or that are
not printable in YAML (U+FEFF, surrogates, U+FFFE/U+FFFF) are escaped;
everything else is written as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TypeAlias

Node: TypeAlias = "str | int | bool | Sequence[Node] | Mapping[str, Node] | None"

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\0": "\\0",
    "\x85": "\\N",
    "\u2028": "\\L",
    "\u2029": "\\P",
}
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# YAML 1.1 reads these (in any case) as booleans or null when unquoted.
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


def quote(text: str) -> str:
    """`text` as a double-quoted YAML scalar."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFEFF, 0xFFFE, 0xFFFF):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def key(text: str) -> str:
    """A mapping key: plain when unambiguous, quoted otherwise."""
    if _PLAIN_KEY.fullmatch(text) and text.lower() not in _RESERVED:
        return text
    return quote(text)


def scalar(node: Node) -> str:
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "true" if node else "false"
    if isinstance(node, int):
        return str(node)
    if isinstance(node, str):
        return quote(node)
    raise TypeError(f"not a scalar: {node!r}")


def _is_scalar(node: Node) -> bool:
    return node is None or isinstance(node, (str, int, bool))


def _lines(node: Node, indent: str) -> list[str]:
    """Block lines of a mapping or sequence, each prefixed with `indent`."""
    lines: list[str] = []
    if isinstance(node, Mapping):
        for k, value in node.items():
            if _is_scalar(value):
                lines.append(f"{indent}{key(k)}: {scalar(value)}")
            elif not value:
                lines.append(f"{indent}{key(k)}: {'{}' if isinstance(value, Mapping) else '[]'}")
            else:
                lines.append(f"{indent}{key(k)}:")
                lines.extend(_lines(value, indent + "  "))
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for item in node:
            if _is_scalar(item):
                lines.append(f"{indent}- {scalar(item)}")
            elif not item:
                lines.append(f"{indent}- {'{}' if isinstance(item, Mapping) else '[]'}")
            else:
                # The first line of a nested block goes after the dash.
                nested = _lines(item, indent + "  ")
                lines.append(f"{indent}- {nested[0][len(indent) + 2 :]}")
                lines.extend(nested[1:])
    else:
        raise TypeError(f"not a mapping or sequence: {node!r}")
    return lines


def dump(node: Mapping[str, Node], comment: str = "") -> str:
    """A YAML document for a mapping, with optional `# comment` lines first."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    return head + "\n".join(_lines(node, "")) + "\n"


def dump_all(documents: Sequence[Mapping[str, Node]], comment: str = "") -> str:
    """A multi-document YAML stream (documents separated by `---`)."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comment.splitlines())
    return head + "".join("---\n" + dump(doc) for doc in documents)
