"""Readiness probes, run inside the supervisor's loop without threads.

Each probe retries a check every `interval` until it passes (`on_ready`) or
`timeout` runs out (`on_timeout`); `reason` then says why the last attempt
failed (`connection refused`, `HTTP 503`, `exit status 1`...), for the
supervisor's notice.  Checks never block the loop:

* tcp and http to a numeric address or `localhost` (127.0.0.1, then ::1,
  without asking DNS) use non-blocking sockets watched by the loop's
  selector; an attempt that gets no answer fails after one interval (at
  least `STALL` seconds);
* tcp and http to any other host name run as a short-lived child
  (`corral.probecheck`), because resolving a name blocks; the loop reaps it
  like a command check and reads the result from its exit status;
* a command check is a child process the loop reaps (`sh -c` with the
  instance's environment: the shell expands its `$VARS`; corral never pastes
  a value into the command text);
* a file check is one `stat`; a log check looks at the output the
  supervisor passes in.

`$VARS` of tcp, http and file targets are filled in here, at attempt time,
from the instance's environment (see `ProbeSpec.endpoint`); the spec itself
stays as written, so what the supervisor shows never holds a value.  A check
child still running is killed when the probe is cancelled or times out.

The loop is reached only through the small `Host` interface, so this module
knows nothing of signals, children tables or output formats, and tests can
drive it with a fake host and a fake clock.
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import shlex
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from corral import probecheck
from corral.specs import Endpoint, ProbeError, ProbeSpec

HTTP_READ_LIMIT = 1 << 16
LOG_CARRY_LIMIT = 1 << 16  # the unfinished line a log probe keeps between reads
STALL = 1.0  # the least time an attempt may wait for an answer
LOCALHOST = ("127.0.0.1", "::1")

# (family, type, proto, sockaddr) of one address to try
Address = tuple[int, int, int, tuple[Any, ...]]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Host(Protocol):
    """What a probe needs from the event loop."""

    def call_later(self, delay: float, fn: Callable[[], None]) -> Cancellable: ...
    def watch(self, sock: socket.socket, events: int, fn: Callable[[int], None]) -> None: ...
    def unwatch(self, sock: socket.socket) -> None: ...
    def spawn_check(
        self, command: str, env: Mapping[str, str], cwd: str | None, on_exit: Callable[[int], None]
    ) -> int: ...
    def kill_check(self, pid: int) -> None: ...


def checker_command(python: str = sys.executable) -> str:
    """The shell command that runs one `probecheck` attempt (parameters in its env).

    `-I -S`: none of the app's PYTHON* variables, no site-packages; the
    checker needs only the standard library.  `exec`: the checker is the
    check process itself, so killing the check kills it.
    """
    return "exec " + shlex.join([python, "-I", "-S", os.path.abspath(probecheck.__file__)])


class Probe:
    """Runs one `ProbeSpec` for one process instance."""

    def __init__(
        self,
        spec: ProbeSpec,
        host: Host,
        on_ready: Callable[[], None],
        on_timeout: Callable[[], None],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> None:
        self.spec = spec
        self.host = host
        self.on_ready = on_ready
        self.on_timeout = on_timeout
        self.env = dict(env or {})
        self.cwd = cwd
        self.done = False
        self.reason: str | None = None  # why the last attempt failed
        self.budget = max(spec.interval, STALL)  # how long one attempt may wait
        self._deadline: Cancellable | None = None  # the overall timeout
        self._retry: Cancellable | None = None  # the next attempt
        self._stall: Cancellable | None = None  # a socket attempt that hangs
        self._sock: socket.socket | None = None
        self._pid: int | None = None  # a command or name check running
        self._addresses: list[Address] = []  # the rest to try in this attempt
        self._endpoint: Endpoint | None = None
        self._out = b""
        self._answer = b""
        self._carry = b""
        self._regex: re.Pattern[bytes] | None = None
        if spec.kind == "log":
            try:
                self._regex = re.compile(spec.target.encode("utf-8", "surrogateescape"))
            except (re.error, ValueError, OverflowError, RecursionError):
                self.reason = "bad regular expression"  # `validate` rejects it at load time

    def start(self) -> None:
        self._deadline = self.host.call_later(self.spec.timeout, self._timed_out)
        if self.spec.kind != "log":
            self._attempt()

    def cancel(self) -> None:
        """Stop for good: no callback will be called any more."""
        self.done = True
        for timer in (self._deadline, self._retry):
            if timer is not None:
                timer.cancel()
        self._deadline = self._retry = None
        self._end_attempt()

    # -- log probe: fed by the supervisor --------------------------------------

    def feed(self, data: bytes) -> None:
        if self.done or self._regex is None:
            return
        lines = (self._carry + data).replace(b"\r", b"\n").split(b"\n")
        self._carry = lines[-1][-LOG_CARRY_LIMIT:]
        if any(self._regex.search(line) for line in lines):
            self._result(None)

    # -- attempts --------------------------------------------------------------

    def _attempt(self) -> None:
        self._retry = None
        if self.done:
            return
        kind = self.spec.kind
        try:
            if kind == "file":
                self._result(self._stat(self.spec.file_path(self.env)))
            elif kind == "cmd":
                self._spawn(self.spec.target, self.env)
            elif kind in ("tcp", "http"):
                self._connect_to(self.spec.endpoint(self.env))
        except ProbeError as exc:  # a $VAR the formation did not check
            self._result(str(exc))

    def _stat(self, path: str) -> str | None:
        """file: None if it exists, else why not."""
        try:
            # relative to the process's working directory, like its commands
            os.stat(os.path.join(self.cwd or ".", path))
        except (FileNotFoundError, NotADirectoryError):
            return "no such file"
        except OSError as exc:
            return (exc.strerror or str(exc)).lower()
        return None

    def _spawn(self, command: str, env: Mapping[str, str]) -> None:
        try:
            self._pid = self.host.spawn_check(command, env, self.cwd, self._exited)
        except (OSError, ValueError) as exc:
            message = exc.strerror if isinstance(exc, OSError) else None
            self._result(f"cannot start the check: {(message or str(exc)).lower()}")

    def _result(self, failure: str | None) -> None:
        """The attempt is over: passed (`failure` None) or failed (why)."""
        if self.done:
            return
        self._end_attempt()
        self.reason = failure
        if failure is None:
            self.cancel()
            self.on_ready()
        else:
            self._retry = self.host.call_later(self.spec.interval, self._attempt)

    def _timed_out(self) -> None:
        if self.done:
            return
        # the last finished attempt's failure says the most; without one,
        # what the attempt still running is doing
        if self.spec.kind == "log":
            self.reason = self.reason or "no matching line"
        elif self.reason is None and self._pid is not None and self.spec.kind == "cmd":
            self.reason = "the check command was still running"
        elif self.reason is None and (self._pid is not None or self._sock is not None):
            self.reason = "no answer yet"
        self.cancel()
        self.on_timeout()

    def _end_attempt(self) -> None:
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        if self._sock is not None:
            self.host.unwatch(self._sock)
            self._sock.close()
            self._sock = None
        if self._pid is not None:
            self.host.kill_check(self._pid)
            self._pid = None
        self._addresses = []

    def _exited(self, code: int) -> None:
        self._pid = None
        if self.spec.kind == "cmd":
            self._result(None if code == 0 else f"exit status {code}")
        else:
            host = _written_host(self.spec)
            self._result(probecheck.reason(code, host, self.budget))

    # -- tcp and http ------------------------------------------------------------

    def _connect_to(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        addresses = _numeric(endpoint)
        if addresses is None:
            # a host name: resolving it could block, so the check runs in a child
            self._spawn(checker_command(), {**self.env, **self._checker_env(endpoint)})
            return
        self._addresses = addresses
        self._stall = self.host.call_later(self.budget, self._stalled)
        self._connect_next(f"cannot connect to {endpoint.address}")

    def _checker_env(self, endpoint: Endpoint) -> dict[str, str]:
        return {
            probecheck.KIND: self.spec.kind,
            probecheck.HOST: endpoint.address,
            probecheck.PORT: endpoint.port,
            probecheck.PATH: endpoint.path or "/",
            probecheck.BUDGET: repr(self.budget),
        }

    def _connect_next(self, failure: str) -> None:
        """Try the next address of this attempt; fail with `failure` if none is left."""
        while self._addresses:
            family, type_, proto, address = self._addresses.pop(0)
            try:
                sock = socket.socket(family, type_, proto)
            except OSError as exc:
                failure = probecheck.describe_errno(exc.errno or errno.EIO)
                continue
            sock.setblocking(False)
            err = sock.connect_ex(address)
            if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
                sock.close()
                failure = probecheck.describe_errno(err)
                continue
            self._sock = sock
            self.host.watch(sock, selectors.EVENT_WRITE, self._connected)
            return
        self._result(failure)

    def _stalled(self) -> None:
        self._stall = None
        if self._sock is not None:
            self._result(f"no answer within {self.budget:g}s")

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self.host.unwatch(self._sock)
            self._sock.close()
            self._sock = None

    def _connected(self, mask: int) -> None:
        sock, endpoint = self._sock, self._endpoint
        if sock is None or endpoint is None:
            return
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            self._drop_socket()
            self._connect_next(probecheck.describe_errno(err))
            return
        if self.spec.kind == "tcp":
            self._result(None)
            return
        self._out = probecheck.request(endpoint.authority, endpoint.path or "/")
        self._answer = b""
        self.host.unwatch(sock)
        self.host.watch(sock, selectors.EVENT_WRITE, self._writable)

    def _writable(self, mask: int) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(self._out)
        except BlockingIOError:
            return
        except OSError as exc:
            self._result(probecheck.describe_errno(exc.errno or errno.EIO))
            return
        self._out = self._out[sent:]
        if not self._out:
            self.host.unwatch(sock)
            self.host.watch(sock, selectors.EVENT_READ, self._readable)

    def _readable(self, mask: int) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError as exc:
            if not self._answer:
                self._result(probecheck.describe_errno(exc.errno or errno.EIO))
                return
            data = b""
        self._answer += data
        if data and b"\n" not in self._answer and len(self._answer) < HTTP_READ_LIMIT:
            return  # the status line is not complete yet
        if not self._answer:
            self._result("connection closed without an answer")
            return
        code = probecheck.status(self._answer)
        if code is None:
            self._result("not an HTTP answer")
        else:
            self._result(None if 200 <= code < 300 else f"HTTP {code}")


def _numeric(
    endpoint: Endpoint,
) -> list[Address] | None:
    """The socket addresses of a numeric host or `localhost`, found without
    asking DNS (AI_NUMERICHOST); None for any other host name."""
    host = endpoint.address
    hosts: Sequence[str] = (host,)
    if host.lower().rstrip(".") == "localhost":
        hosts = LOCALHOST
    else:
        import ipaddress  # only tcp and http probes pay for it

        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
    flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    found: list[Address] = []
    for numeric in hosts:
        try:
            infos = socket.getaddrinfo(numeric, endpoint.port, type=socket.SOCK_STREAM, flags=flags)
        except (OSError, UnicodeError):
            continue  # ::1 on a host without IPv6
        found += [(info[0], info[1], info[2], info[4]) for info in infos]
    return found


def _written_host(spec: ProbeSpec) -> str:
    """The host of a tcp/http probe as written (`$DB_HOST`): reasons show no values."""
    try:
        return spec.endpoint().address
    except ProbeError:
        return "the host"
