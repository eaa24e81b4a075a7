"""How names, durations and `$` are spelled in the generated files, where
several formats share a spelling: DNS labels (compose services, Kubernetes
objects), durations (systemd and compose), and `$` doubled for the formats
that expand it themselves (compose, Kubernetes)."""

from __future__ import annotations

import math
import re

from corral.errors import CorralError

DNS_LABEL_MAX = 63


def dns_label(text: str, what: str) -> str:
    """Map a name to an RFC 1123 label (`foo_bar` -> `foo-bar`, lower case, <= 63)."""
    label = re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")
    label = label[:DNS_LABEL_MAX].rstrip("-")
    if not label:
        raise CorralError(f"cannot make a DNS name from {what} {text!r}")
    return label


def unique_labels(names: list[str], prefix: str, what: str) -> dict[str, str]:
    """`prefix-<label>` for each name; two names giving the same label is an error."""
    seen: dict[str, str] = {}
    result: dict[str, str] = {}
    for name in names:
        label = dns_label(f"{prefix}-{name}" if prefix else name, what)
        if label in seen:
            raise CorralError(
                f"process types {seen[label]!r} and {name!r} both become {what} "
                f"{label!r}; rename one in the Procfile"
            )
        seen[label] = name
        result[name] = label
    return result


def seconds(timeout: float) -> str:
    """A duration for systemd/compose: `5` -> `5`, `2.5` -> `2500ms`."""
    if timeout == int(timeout):
        return str(int(timeout))
    return f"{round(timeout * 1000)}ms"


def whole_seconds(timeout: float) -> int:
    """A duration for formats that only take whole seconds (rounded up)."""
    return math.ceil(timeout)


def dollar(text: str) -> str:
    """`$` -> `$$`: compose interpolates `$VAR` in every string of its file,
    Kubernetes expands `$(VAR)` in `command` and `env` values; both read `$$`
    as a literal `$`."""
    return text.replace("$", "$$")
