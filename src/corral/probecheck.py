"""One tcp or http probe attempt on a host *name*, run in its own short-lived process.

Why a process: resolving a name (`getaddrinfo`) blocks, for as long as a DNS
server takes to answer or to be given up on (5 s and more by default), and
corral's loop must never block.  There is no non-blocking resolver in the
standard library, threads are not allowed in corral, glibc's `getaddrinfo_a`
runs threads of its own, and a resolver of our own would miss `/etc/hosts`,
nsswitch and search domains: the app itself resolves through libc, so the
check must too.  So the probe asks its host to spawn this module
(`python -I -S probecheck.py`, through the same `Host.spawn_check` that runs
`cmd:` probes), the loop reaps it like any check command, and the exit status
is the result.  The child is killed when the probe is cancelled or times out.
Numeric addresses and `localhost` never come here: `probes` connects to them
in the loop.

The attempt's parameters come in the environment (`CORRAL_CHECK_*`), not in
argv, which every user of the machine can read in /proc; a URL path may hold
a token.  Each attempt gets `CORRAL_CHECK_BUDGET` seconds: the resolution is
bounded by SIGALRM at its default action (a signal handler would not run
while libc waits), the connection and the HTTP answer by socket timeouts.

The exit status says why an attempt failed (`reason`), so the probe can
report `cannot resolve db` or `HTTP 503` when it times out.  The same request
and status-line code serves the in-loop checks in `probes`.

This file imports only the standard library: it runs as a script under
`-I -S` (no site-packages, no PYTHON* variables of the app), so it works
whatever environment the app's processes have.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping

KIND, HOST, PORT, PATH, BUDGET = (
    "CORRAL_CHECK_KIND",
    "CORRAL_CHECK_HOST",
    "CORRAL_CHECK_PORT",
    "CORRAL_CHECK_PATH",
    "CORRAL_CHECK_BUDGET",
)
READ_LIMIT = 1 << 16  # an answer without a status line within this is not HTTP
MAX_BUDGET = 86400.0  # setitimer and socket timeouts overflow on huge values

READY = 0
BAD_CALL = 2
CANNOT_RESOLVE = 3
NO_ANSWER = 4
NOT_HTTP = 5
CLOSED = 6
OTHER_ERROR = 9
# connect/send/recv failures worth naming, each its own exit status
ERRNOS = (
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EADDRNOTAVAIL,
    errno.EACCES,
    errno.EPERM,
    errno.EPIPE,
)
ERRNO_BASE = 10
# exact HTTP statuses 100-599 are too many for an exit status: the common
# failures are named, any other by its class (`HTTP 4xx`)
STATUSES = (
    300, 301, 302, 303, 304, 307, 308,
    400, 401, 403, 404, 405, 406, 408, 409, 410, 412, 413, 415, 421, 422, 425, 426, 428, 429,
    500, 501, 502, 503, 504, 505,
)  # fmt: skip
STATUS_BASE = 32
CLASS_BASE = 24  # + the first digit of the status (1-5)
RESOLVE_TIMED_OUT = 128 + signal.SIGALRM  # as the reaper reports a death by SIGALRM


def request(authority: str, path: str) -> bytes:
    """The GET request of an http probe."""
    return (
        f"GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: corral\r\n"
        "Connection: close\r\n\r\n"
    ).encode("ascii")


def status(answer: bytes) -> int | None:
    """The status code of an HTTP answer's first line, None if it is not HTTP."""
    words = answer.split(b"\r\n", 1)[0].split(b"\n", 1)[0].split()
    if len(words) >= 2 and words[0].startswith(b"HTTP/") and len(words[1]) == 3:
        try:
            code = int(words[1])
        except ValueError:
            return None
        return code if 100 <= code <= 599 else None
    return None


def describe_errno(number: int) -> str:
    """`connection refused`, `no route to host`...: an errno as a reason."""
    if number == errno.ECONNREFUSED:
        return "connection refused"
    return os.strerror(number).lower()


def status_exit(code: int) -> int:
    """The exit status that reports an HTTP status that is not 2xx."""
    if code in STATUSES:
        return STATUS_BASE + STATUSES.index(code)
    return CLASS_BASE + code // 100


def reason(code: int, host: str, budget: float) -> str | None:
    """Why the attempt that exited with `code` failed (None: it passed).

    `host` is the host as written in the probe (`$DB_HOST`, not its value).
    """
    if code == READY:
        return None
    if code == CANNOT_RESOLVE:
        return f"cannot resolve {host}"
    if code == RESOLVE_TIMED_OUT:
        return f"cannot resolve {host}: no answer within {budget:g}s"
    if code == NO_ANSWER:
        return f"no answer within {budget:g}s"
    if code == NOT_HTTP:
        return "not an HTTP answer"
    if code == CLOSED:
        return "connection closed without an answer"
    if ERRNO_BASE <= code < ERRNO_BASE + len(ERRNOS):
        return describe_errno(ERRNOS[code - ERRNO_BASE])
    if STATUS_BASE <= code < STATUS_BASE + len(STATUSES):
        return f"HTTP {STATUSES[code - STATUS_BASE]}"
    if CLASS_BASE + 1 <= code <= CLASS_BASE + 5:
        return f"HTTP {code - CLASS_BASE}xx"
    return f"the check failed (exit status {code})"


def _error_exit(exc: OSError) -> int:
    if isinstance(exc, TimeoutError):
        return NO_ANSWER
    if exc.errno in ERRNOS:
        return ERRNO_BASE + ERRNOS.index(exc.errno)
    return OTHER_ERROR


def check(environ: Mapping[str, str]) -> int:
    """One attempt, as described by `environ`; its exit status."""
    try:
        kind, host, port = environ[KIND], environ[HOST], int(environ[PORT])
        path, budget = environ.get(PATH, "/"), float(environ[BUDGET])
    except (KeyError, ValueError):
        return BAD_CALL
    if kind not in ("tcp", "http") or not budget > 0:
        return BAD_CALL
    budget = min(budget, MAX_BUDGET)
    deadline = time.monotonic() + budget
    # SIGALRM at its default action ends us even inside libc's resolver
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return CANNOT_RESOLVE
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    result = CANNOT_RESOLVE
    for family, type_, proto, _, address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return NO_ANSWER
        try:
            with socket.socket(family, type_, proto) as sock:
                sock.settimeout(remaining)
                sock.connect(address)
                if kind == "tcp":
                    return READY
                authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                return _http(sock, request(authority, path), deadline)
        except OSError as exc:
            result = _error_exit(exc)
    return result


def _http(sock: socket.socket, message: bytes, deadline: float) -> int:
    sock.sendall(message)
    answer = b""
    while b"\n" not in answer and len(answer) < READ_LIMIT:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return NO_ANSWER
        sock.settimeout(remaining)
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    if not answer:
        return CLOSED
    code = status(answer)
    if code is None:
        return NOT_HTTP
    return READY if 200 <= code < 300 else status_exit(code)


if __name__ == "__main__":
    sys.exit(check(os.environ))
