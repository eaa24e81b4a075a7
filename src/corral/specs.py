"""Plain data shared by the parser, the formation, the supervisor and the exporters.

`ProcessSpec` is *what to run* (one instance, e.g. `web.2`); the supervisor's
`Child` is a live pid.  Keeping the two apart lets `formation` and `export` stay
pure and lets restarts re-use a spec.  `Policy` is the lifecycle of a process
type (one-shot, restart, dependencies, readiness, stop signal); the defaults
are the plain Procfile behaviour: the first exit stops everything.

`ProbeSpec` also owns the grammar of probe targets (`validate`, `endpoint`,
`file_path`, `check_env`): loading, the formation, the probe at run time and
the exporters must all read `tcp:db:$PORT` the same way, and a target is
kept exactly as written so that no notice ever shows an environment value.
"""

from __future__ import annotations

import re
import signal
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.shell import exec_command

RESTART_MODES = ("no", "on-failure", "always")


@dataclass(frozen=True)
class RestartPolicy:
    """When and how fast a process is restarted after it exits.

    mode:        `no` (its exit stops everything), `on-failure` (non-zero
                 exits and deaths by signal), `always`
    delay:       first back-off delay; doubled after each consecutive restart
    max_delay:   the back-off cap
    limit:       at most this many restarts within `window` seconds; one more
                 exit then stops everything with that exit code
    reset_after: an instance that stayed up this long starts again at `delay`
    """

    mode: str = "no"
    delay: float = 1.0
    max_delay: float = 30.0
    limit: int = 5
    window: float = 60.0
    reset_after: float = 10.0

    def wants_restart(self, code: int) -> bool:
        return self.mode == "always" or (self.mode == "on-failure" and code != 0)


PROBE_KINDS = ("tcp", "http", "file", "cmd", "log")
DEFAULT_HOST = "127.0.0.1"  # a tcp/http probe without a host
DEFAULT_HTTP_PORT = "80"  # an http://HOST/ URL without a port
PROBE_FORMS = {
    "tcp": "tcp:[HOST:]PORT",
    "http": "http:[HOST:]PORT/PATH or http://HOST[:PORT]/PATH",
    "file": "file:PATH",
    "cmd": "cmd:COMMAND",
    "log": "log:REGEX",
}
_HOST_NAME = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?"
)
_PORT = re.compile(r"[0-9]{1,5}")
_URL_PATH = re.compile(r"/[\x21-\x7e]*")  # printable ASCII, no spaces: safe on a request line
_PATH_RULE = "printable ASCII without spaces (%-escape the rest)"
_HOST_CHARS = re.compile(r"[A-Za-z0-9_.:%-]*")
_DIGITS = re.compile(r"[0-9]*")
_PATH_CHARS = re.compile(r"[\x21-\x7e]*")


class ProbeError(ValueError):
    """Why a probe cannot work.  The text names `$VARS`, never their values."""


@dataclass(frozen=True)
class Endpoint:
    """Where a tcp or http probe connects.

    host: a name or an IP address (IPv6 without its brackets); "" for the
          default, DEFAULT_HOST
    port: the port, as digits
    path: http only, `/path?query` (never empty); "" for tcp
    From `ProbeSpec.endpoint()` the parts are as written (`$PORT`); from
    `ProbeSpec.endpoint(env)` they are filled in and checked.
    """

    host: str
    port: str
    path: str = ""

    @property
    def address(self) -> str:
        """The host to connect to."""
        return self.host or DEFAULT_HOST

    @property
    def authority(self) -> str:
        """`host:port` as an HTTP Host header wants it (IPv6 in brackets)."""
        host = self.address
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness probe: `kind:target`, retried every `interval` for `timeout` s.

    tcp:[HOST:]PORT             a TCP connection is accepted (host 127.0.0.1)
    http:[HOST:]PORT/PATH       GET returns 2xx (host 127.0.0.1), or a whole
    http://HOST[:PORT]/PATH     URL; no https (see lifecycle)
    file:PATH                   the file exists (relative: to the app root)
    cmd:COMMAND                 the shell command exits 0
    log:REGEX                   a line of the process's output matches

    `target` is always kept as written, and `str()` shows it so: a notice
    never shows a value from the environment.  `$PORT` and other `$VARS` in
    tcp, http and file targets are filled in from the instance's environment
    by the probe itself, part by part (a value is a whole host, port or path,
    never more syntax); a cmd probe's shell expands its own variables from the
    same environment (corral never pastes values into shell text); a log
    regex is used as it is (`$` is its end-of-line anchor).

    The grammar lives here, beside the data, because the loader (`validate`,
    at load time), the formation (`check_env`, once the environment is known),
    the probe (`endpoint(env)`, at attempt time) and the exporters must read
    a target the same way.
    """

    kind: str
    target: str
    interval: float = 0.5
    timeout: float = 60.0

    def __str__(self) -> str:
        """As the user wrote it: `tcp:$PORT`, or a bare `http://...` URL."""
        if self.kind == "http" and self.target.lower().startswith("http://"):
            return self.target
        return f"{self.kind}:{self.target}"

    def validate(self) -> None:
        """Raise `ProbeError` unless the probe can run in some environment.

        Everything that would otherwise fail only when the probe starts: a
        NUL byte, text that is not UTF-8, an address that is not
        `[HOST:]PORT`, a port out of range, a lone `$`, a bad regex.
        """
        text = self.target
        if "\0" in text:
            hint = r" (write \x00 to match one)" if self.kind == "log" else ""
            raise ProbeError(f"the probe holds a NUL byte{hint}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ProbeError("the probe is not valid UTF-8 text") from None
        if self.kind not in PROBE_FORMS:
            raise ProbeError(f"unknown probe kind {self.kind!r}")
        if not text.strip():
            raise ProbeError(f"the probe has no target (expected {PROBE_FORMS[self.kind]})")
        if self.kind in ("tcp", "http"):
            try:
                self.endpoint()
            except ProbeError as exc:
                raise ProbeError(f"{exc} (expected {PROBE_FORMS[self.kind]})") from None
        elif self.kind == "file":
            _variables(text, "the path")
        elif self.kind == "log":
            try:
                re.compile(text.encode())  # as the probe compiles it: bytes
            except (re.error, ValueError, OverflowError, RecursionError) as exc:
                raise ProbeError(f"bad regular expression {text!r}: {exc}") from None

    def endpoint(self, env: Mapping[str, str] | None = None) -> Endpoint:
        """tcp and http: the parts of the target, as written; with `env`,
        filled in and checked (`ProbeError`: a `$VAR` is unset, or its value
        does not make a host, a port or a path)."""
        written = _split(self.kind, self.target.strip())
        _check_endpoint(written, None)
        if env is None:
            return written
        filled = Endpoint(
            _fill(written.host, env), _fill(written.port, env), _fill(written.path, env)
        )
        _check_endpoint(filled, written)
        return filled

    def file_path(self, env: Mapping[str, str]) -> str:
        """file: the path with its `$VARS` filled in."""
        path = _fill(self.target.strip(), env)
        if not path or "\0" in path:
            raise ProbeError(f"{self.target!r} gives an empty path or one with a NUL byte")
        return path

    def check_env(self, env: Mapping[str, str]) -> None:
        """Raise `ProbeError` if the probe cannot work with this environment."""
        if self.kind in ("tcp", "http"):
            self.endpoint(env)
        elif self.kind == "file":
            self.file_path(env)


def _split(kind: str, text: str) -> Endpoint:
    """The host, port and path parts of a tcp/http target (templates or values)."""
    if any(c.isspace() for c in text):
        raise ProbeError("an address cannot hold spaces (in a URL path, write %20)")
    if kind == "tcp":
        if "/" in text:
            raise ProbeError("a tcp probe has no path")
        host, port = _authority(text, url=False, bare_ipv6=True)
        return Endpoint(host, port)
    if text.lower().startswith("https:"):
        raise ProbeError("https is not supported")
    url = False
    if text.lower().startswith("http://"):
        text, url = text[7:], True
    elif text.startswith("//"):
        text, url = text[2:], True
    cut = next((i for i, c in enumerate(text) if c in "/?#"), len(text))
    rest = text[cut:].split("#", 1)[0]
    host, port = _authority(text[:cut], url=url, bare_ipv6=False)
    return Endpoint(host, port, rest if rest.startswith("/") else "/" + rest)


def _authority(text: str, url: bool, bare_ipv6: bool) -> tuple[str, str]:
    """(host, port) of `[HOST:]PORT` (`HOST[:PORT]` in a URL)."""
    if "@" in text:
        raise ProbeError("a user name or password cannot be part of a probe address")
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not host or (rest and not rest.startswith(":")):
            raise ProbeError("write an IPv6 address as [ADDRESS] or [ADDRESS]:PORT")
        port = rest[1:] if rest else ""
        if not rest and not url:
            raise ProbeError("no port after the address")
    elif text.count(":") > 1:
        if not bare_ipv6:
            raise ProbeError("write an IPv6 address in brackets: [ADDRESS]:PORT")
        host, _, port = text.rpartition(":")
    elif ":" in text:
        host, _, port = text.partition(":")
        if not host and not url:
            raise ProbeError("nothing before ':' (leave the host out, or name one)")
    elif url:
        host, port = text, ""
    else:
        host, port = "", text
    if url and not host:
        raise ProbeError("the URL has no host")
    if url and not port:
        port = DEFAULT_HTTP_PORT
    if not port:
        raise ProbeError("no port")
    return host, port


def _check_endpoint(parts: Endpoint, written: Endpoint | None) -> None:
    """Check the parts: as written (templates: `written` is None), or filled in."""
    shown = written or parts
    checks: tuple[tuple[str, str, Callable[[str], object], re.Pattern[str], str, str], ...] = (
        (parts.host, shown.host, _good_host, _HOST_CHARS, "host", "a host name or an IP address"),
        (parts.port, shown.port, _good_port, _DIGITS, "port", "a number from 1 to 65535"),
        (parts.path, shown.path, _URL_PATH.fullmatch, _PATH_CHARS, "URL path", _PATH_RULE),
    )
    for value, as_written, good, chars, what, expected in checks:
        if not value:
            continue
        if written is None and _variables(value, f"the {what}"):
            # a template: check the literal characters now, the rest once filled in
            if not chars.fullmatch(string.Template.pattern.sub("", value)):
                raise ProbeError(f"{what} {value!r} is not {expected}")
            continue
        if not good(value):
            once = " once its $VARS are filled in" if written is not None else ""
            raise ProbeError(f"{what} {as_written!r} is not {expected}{once}")


def _good_host(host: str) -> bool:
    if ":" in host or host.replace(".", "").isdigit():
        import ipaddress  # only for addresses written as numbers

        try:
            ipaddress.ip_address(host)
        except ValueError:
            return False
        return True
    return len(host) <= 253 and _HOST_NAME.fullmatch(host) is not None


def _good_port(port: str) -> bool:
    return _PORT.fullmatch(port) is not None and 1 <= int(port) <= 65535


def _variables(text: str, what: str) -> list[str]:
    """The `$NAME`/`${NAME}` names in `text`; `ProbeError` for a lone `$`."""
    names = []
    for match in string.Template.pattern.finditer(text):
        if match.group("invalid") is not None:
            raise ProbeError(
                f"a lone $ in {what} {text!r}: write $NAME or ${{NAME}} for a variable, $$ for a $"
            )
        name = match.group("named") or match.group("braced")
        if name:
            names.append(name)
    return names


def _fill(text: str, env: Mapping[str, str]) -> str:
    """`text` with its `$VARS` filled in from `env`; `ProbeError` names an unset one."""

    def value(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named") or match.group("braced")
        if name is None:
            raise ProbeError(f"a lone $ in {text!r}")
        if name not in env:
            raise ProbeError(f"${name} is not set in the environment")
        return env[name]

    return string.Template.pattern.sub(value, text)


@dataclass(frozen=True)
class Policy:
    """The lifecycle settings of one process type."""

    oneshot: bool = False  # may exit 0 without stopping the others
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    after: tuple[str, ...] = ()  # types that must be ready (one-shots: done) first
    ready: ProbeSpec | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float | None = None  # grace before SIGKILL; None: the global one
    run_timeout: float | None = None  # a one-shot still running then stops everything


@dataclass(frozen=True)
class ProcessSpec:
    """One process instance to run.

    name:    instance name, `web.1`
    kind:    process type from the Procfile, `web`
    command: passed to `/bin/sh -c`, with `exec` when it is one simple
             command (or run directly when `argv` is set)
    env:     the complete environment of the child
    cwd:     working directory of the child (None: corral's own)
    port:    the PORT given to this instance
    quiet:   hide its output lines (start/stop lines still show)
    tty:     run it on a pseudo-terminal instead of pipes
    policy:  the lifecycle settings of its type
    """

    name: str
    kind: str
    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    port: int | None = None
    quiet: bool = False
    tty: bool = False
    argv: tuple[str, ...] | None = None
    policy: Policy = field(default_factory=Policy)

    @property
    def stop_signal(self) -> int:
        return self.policy.stop_signal

    def args(self) -> list[str]:
        """The argv to exec: the explicit argv, or `/bin/sh -c command`.

        A simple command runs as `exec command`, so the shell replaces itself
        and the app is the process corral supervises (see `corral.shell`).
        """
        if self.argv is not None:
            return list(self.argv)
        return ["/bin/sh", "-c", exec_command(self.command)]
