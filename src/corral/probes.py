"""Readiness probes, run inside the supervisor's loop without threads.

Each probe retries a check every `interval` until it passes (`on_ready`) or
`timeout` runs out (`on_timeout`).  Checks never block: TCP and HTTP use
non-blocking sockets watched by the loop's selector, a command check is a
child process the loop reaps, a file check is one `stat`, and a log check
looks at the output the supervisor passes in.  The loop is reached only
through the small `Host` interface, so this module knows nothing of signals,
children tables or output formats.
"""

from __future__ import annotations

import errno
import os
import re
import selectors
import socket
from collections.abc import Callable, Mapping
from typing import Protocol

from corral.specs import ProbeSpec

HTTP_READ_LIMIT = 1 << 16


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
        self._deadline: Cancellable | None = None  # the overall timeout
        self._retry: Cancellable | None = None  # the next attempt
        self._stall: Cancellable | None = None  # a socket attempt that hangs
        self._sock: socket.socket | None = None
        self._pid: int | None = None
        self._carry = b""
        self._buffer = b""
        self._regex = re.compile(spec.target.encode()) if spec.kind == "log" else None

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
        buf = self._carry + data
        lines = buf.replace(b"\r", b"\n").split(b"\n")
        self._carry = lines[-1][-HTTP_READ_LIMIT:]
        if any(self._regex.search(line) for line in lines):
            self._result(True)

    # -- attempts --------------------------------------------------------------

    def _attempt(self) -> None:
        if self.done:
            return
        kind = self.spec.kind
        if kind == "file":
            # relative to the process's working directory, like its commands
            self._result(os.path.exists(os.path.join(self.cwd or ".", self.spec.target)))
        elif kind == "cmd":
            try:
                self._pid = self.host.spawn_check(
                    self.spec.target, self.env, self.cwd, self._exited
                )
            except OSError:
                self._result(False)
        elif kind in ("tcp", "http"):
            self._connect()

    def _result(self, ok: bool) -> None:
        if self.done:
            return
        self._end_attempt()
        if ok:
            self.cancel()
            self.on_ready()
        else:
            self._retry = self.host.call_later(self.spec.interval, self._attempt)

    def _timed_out(self) -> None:
        if not self.done:
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

    def _exited(self, code: int) -> None:
        self._pid = None
        self._result(code == 0)

    # -- tcp and http ------------------------------------------------------------

    def _address(self) -> tuple[str, int, str]:
        """(host, port, path) of the target; ValueError if it has none."""
        target = self.spec.target
        if self.spec.kind == "http":
            if "://" not in target:
                target = "http://127.0.0.1:" + target
            from urllib.parse import urlsplit  # only http probes pay for it

            url = urlsplit(target)
            if url.scheme != "http" or (url.port is None and url.hostname is None):
                raise ValueError(target)
            path = url.path or "/"
            if url.query:
                path += "?" + url.query
            return url.hostname or "127.0.0.1", url.port or 80, path
        host, _, port = target.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port), ""

    def _connect(self) -> None:
        try:
            host, port, _ = self._address()
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except (ValueError, OSError):
            self._result(False)
            return
        sock = socket.socket(info[0], info[1], info[2])
        sock.setblocking(False)
        err = sock.connect_ex(info[4])
        if err not in (0, errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK):
            sock.close()
            self._result(False)
            return
        self._sock = sock
        self._buffer = b""
        self.host.watch(sock, selectors.EVENT_WRITE, self._connected)
        # an attempt that hangs (a firewall dropping SYNs) fails after one interval
        self._stall = self.host.call_later(max(self.spec.interval, 1.0), self._stalled)

    def _stalled(self) -> None:
        if self._sock is not None:
            self._result(False)

    def _connected(self, mask: int) -> None:
        sock = self._sock
        if sock is None:
            return
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            self._result(False)
            return
        if self.spec.kind == "tcp":
            self._result(True)
            return
        host, port, path = self._address()
        request = f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: corral\r\n\r\n"
        try:
            sock.send(request.encode())
        except OSError:
            self._result(False)
            return
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
        except OSError:
            data = b""
        self._buffer += data
        if b"\r\n" not in self._buffer and data and len(self._buffer) < HTTP_READ_LIMIT:
            return
        status = self._buffer.split(b"\r\n", 1)[0].split()
        ok = len(status) >= 2 and status[0].startswith(b"HTTP/") and status[1][:1] == b"2"
        self._result(ok)
