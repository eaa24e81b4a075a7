"""The shell text the exported files run: the `sh -c` script of a process
a readiness probe as a check command (exit 0: ready), and the bounded,
quiet wait loop around such a check that every format runs before a dependant.

Owned apart from the formats: each format then quotes this text for its own
syntax (`corral.export.systemd` and the others).
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping

from corral.export.text import whole_seconds
from corral.shell import exec_command
from corral.specs import ProbeSpec


def shell_script(command: str, exports: Mapping[str, str] | None = None) -> str:
    """The `sh -c` script: export what the target cannot carry, then the command.

    A simple command is run with `exec`, which makes the app the supervised
    process (no shell left in between to receive the stop signal and orphan
    it).  Anything else (`cd x && cmd`, `FOO=1 cmd`, `a; b`, a pipeline) runs
    as written under the shell: each format then signals the whole process
    group (see `corral.export`).  The values are single-quoted, so the shell
    takes them literally.
    """
    prefix = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (exports or {}).items())
    return f"{prefix}{exec_command(command)}"


# -- readiness checks as shell commands -----------------------------------------

TCP_CHECK = (
    "if command -v nc >/dev/null 2>&1; then nc -z -w 2 {host} {port}; "
    "else bash -c ': <\"/dev/tcp/$0/$1\"' {host} {port}; fi"
)
HTTP_CHECK = (
    "if command -v curl >/dev/null 2>&1; then curl -fsS -o /dev/null {url}; "
    "elif command -v wget >/dev/null 2>&1; then wget -q -O /dev/null {url}; "
    "else python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' "
    "{url}; fi"
)


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_./:@%+,=-]+")


def _dq_literal(text: str) -> str:
    return re.sub(r'([\\"`$])', r"\\\1", text)


def expanding_word(text: str) -> str:
    """A double-quoted sh word for a probe target: its `$VAR` and `${VAR}` are
    expanded by the shell at check time from the process's environment (as
    `corral start` expands them from the instance's), `$$` is a literal `$`,
    and everything else is literal.  Plain text stays unquoted."""
    if _PLAIN_WORD.fullmatch(text):
        return text
    out = ['"']
    pos = 0
    for match in string.Template.pattern.finditer(text):
        out.append(_dq_literal(text[pos : match.start()]))
        name = match.group("named") or match.group("braced")
        out.append("${" + name + "}" if name else "\\$")
        pos = match.end()
    out.append(_dq_literal(text[pos:]))
    out.append('"')
    return "".join(out)


def probe_command(probe: ProbeSpec) -> str | None:
    """One attempt of a readiness probe as a sh command (exit 0: ready), or None
    for a `log:` probe, which watches output only corral sees.

    tcp: `nc -z`, else bash's /dev/tcp; http: curl, else wget, else python3
    (2xx, and with curl and wget also 3xx, count as ready); file: `test -e`;
    cmd: the command itself.  The target is read by `ProbeSpec.endpoint`, as
    `corral start` reads it; its `$VARS` are left to the shell (`expanding_word`).
    """
    if probe.kind == "tcp":
        where = probe.endpoint()
        return TCP_CHECK.format(host=expanding_word(where.address), port=expanding_word(where.port))
    if probe.kind == "http":
        where = probe.endpoint()
        return HTTP_CHECK.format(url=expanding_word(f"http://{where.authority}{where.path}"))
    if probe.kind == "file":
        return f"test -e {expanding_word(probe.target)}"
    if probe.kind == "cmd":
        return probe.target
    return None


# seconds the supervisor's own start timeout is given beyond the probe's, so that
# the wait below reports the timeout itself before the supervisor kills it
WAIT_GRACE = 5


def wait_script(check: str, probe: ProbeSpec, what: str) -> str:
    """A sh loop retrying `check` every `probe.interval` for `probe.timeout` s.

    Failed attempts are silent (their output goes to /dev/null: a probe's
    traceback every half second would flood the journal); on timeout it
    writes one line to stderr, naming `what` and the probe kind (not the
    target, which may carry expanded values), and exits 1.  The check is
    closed by a newline, not `;`, so a trailing `&` or `#` cannot swallow it.
    """
    limit = whole_seconds(probe.timeout)
    return (
        f"deadline=$(($(date +%s) + {limit}))\n"
        f"until {{ {check}\n}} >/dev/null 2>&1\n"
        f'do if [ "$(date +%s)" -ge "$deadline" ]; then '
        f"echo {shlex.quote(f'{what}: not ready after {limit}s ({probe.kind} probe)')} >&2; "
        f"exit 1; fi\n"
        f"sleep {probe.interval:g}; done"
    )
