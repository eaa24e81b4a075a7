"""Readiness probes driven by a fake host: a fake clock and timers, fake
check processes, and socket watches served by a real selector (local
sockets only: a listener the test controls, or a port nobody listens on).

Also: the probe target grammar (`ProbeSpec`), the formation's check of a
probe against an instance's environment, and the `probecheck` child.
"""

from __future__ import annotations

import heapq
import itertools
import os
import selectors
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import probecheck
from corral.errors import UsageError
from corral.formation import _instance_policy
from corral.lifecycle import _probe
from corral.probes import STALL, Probe, checker_command
from corral.specs import Endpoint, Policy, ProbeError, ProbeSpec

# -- the fake host ---------------------------------------------------------------


class FakeTimer:
    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeHost:
    """The probe's `Host`: time moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._sequence = itertools.count()
        self.selector = selectors.DefaultSelector()
        self.watched: dict[socket.socket, Callable[[int], None]] = {}
        self.checks: dict[int, tuple[str, dict[str, str], str | None, Callable[[int], None]]] = {}
        self.spawned: list[tuple[float, int, str, dict[str, str]]] = []  # (time, pid, cmd, env)
        self.killed: list[int] = []
        self._pids = itertools.count(1000)

    # the Host interface
    def call_later(self, delay: float, fn: Callable[[], None]) -> FakeTimer:
        timer = FakeTimer(self.now + delay, fn)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def watch(self, sock: socket.socket, events: int, fn: Callable[[int], None]) -> None:
        assert sock not in self.watched, "watched twice"
        self.selector.register(sock, events, fn)
        self.watched[sock] = fn

    def unwatch(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        del self.watched[sock]

    def spawn_check(
        self, command: str, env: Mapping[str, str], cwd: str | None, on_exit: Callable[[int], None]
    ) -> int:
        pid = next(self._pids)
        self.checks[pid] = (command, dict(env), cwd, on_exit)
        self.spawned.append((self.now, pid, command, dict(env)))
        return pid

    def kill_check(self, pid: int) -> None:
        self.killed.append(pid)
        self.checks.pop(pid, None)

    # driving it
    def advance(self, seconds: float) -> None:
        """Move the clock, running every timer that falls due on the way."""
        end = self.now + seconds
        while self._timers and self._timers[0][0] <= end:
            when, _, timer = heapq.heappop(self._timers)
            self.now = max(self.now, when)
            if not timer.cancelled:
                timer.fn()
        self.now = end

    def pending_timers(self) -> list[float]:
        return sorted(t.when for _, _, t in self._timers if not t.cancelled)

    def finish(self, pid: int, code: int) -> None:
        """The check process `pid` exits with `code` (the loop reaps it)."""
        _, _, _, on_exit = self.checks.pop(pid)
        on_exit(code)

    def last_pid(self) -> int:
        return self.spawned[-1][1]

    def serve(self, until: Callable[[], bool], limit: int = 1000) -> None:
        """Dispatch socket events (no clock change) until `until()` holds."""
        for _ in range(limit):
            if until():
                return
            assert self.watched, "nothing watched, and the condition does not hold"
            for key, mask in self.selector.select(timeout=10):
                key.data(mask)
        raise AssertionError("condition not reached")


class Outcome:
    """Counts the probe's callbacks."""

    def __init__(self) -> None:
        self.ready = 0
        self.timeouts = 0

    def on_ready(self) -> None:
        self.ready += 1

    def on_timeout(self) -> None:
        self.timeouts += 1

    @property
    def done(self) -> bool:
        return bool(self.ready or self.timeouts)


def make(
    kind: str,
    target: str,
    *,
    interval: float = 0.5,
    timeout: float = 5.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> tuple[Probe, FakeHost, Outcome]:
    host, outcome = FakeHost(), Outcome()
    probe = Probe(
        ProbeSpec(kind, target, interval, timeout),
        host,
        outcome.on_ready,
        outcome.on_timeout,
        env=env,
        cwd=cwd,
    )
    return probe, host, outcome


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that the test accepts from by hand."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        sock.settimeout(10)
        yield sock


def closed_port() -> int:
    """A port on 127.0.0.1 that nobody listens on (bound, not listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    CLOSED.append(sock)  # kept bound, so nobody else gets it meanwhile
    return int(sock.getsockname()[1])


CLOSED: list[socket.socket] = []


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail the test if anything resolves a name in this process."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: str, port: object, *args: object, **kwargs: object) -> object:
        flags = int(kwargs.get("flags", args[3] if len(args) > 3 else 0))  # type: ignore[call-overload]
        if not flags & socket.AI_NUMERICHOST:
            asked.append(host)
            raise AssertionError(f"getaddrinfo({host!r}) would block the loop")
        return real(host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return asked


def port_of(sock: socket.socket) -> str:
    return str(sock.getsockname()[1])


# -- file ------------------------------------------------------------------------


def test_file_probe_retries_at_interval_until_the_file_exists(tmp_path: Path) -> None:
    probe, host, outcome = make(
        "file", "$NAME.flag", interval=0.25, env={"NAME": "up"}, cwd=str(tmp_path)
    )
    probe.start()
    assert not outcome.done and probe.reason == "no such file"
    assert host.pending_timers() == [0.25, 5.0]  # the next attempt, the overall timeout
    host.advance(0.5)
    assert not outcome.done
    (tmp_path / "up.flag").touch()
    host.advance(0.25)
    assert outcome.ready == 1 and probe.reason is None
    assert host.pending_timers() == []  # nothing left to call


def test_file_probe_times_out_with_its_reason(tmp_path: Path) -> None:
    probe, host, outcome = make("file", "never", timeout=2, cwd=str(tmp_path))
    probe.start()
    host.advance(1.999)
    assert outcome.timeouts == 0
    host.advance(0.001)
    assert outcome.timeouts == 1 and outcome.ready == 0
    assert probe.reason == "no such file"
    host.advance(100)
    assert outcome.timeouts == 1


# -- cmd -------------------------------------------------------------------------


def test_cmd_probe_is_never_filled_in_and_retries_at_interval() -> None:
    env = {"DB_PASSWORD": "x;touch pwned;false", "PORT": "5000"}
    probe, host, outcome = make("cmd", "test -n $DB_PASSWORD", interval=0.5, env=env)
    probe.start()
    for attempt in range(3):
        when, pid, command, check_env = host.spawned[-1]
        assert when == attempt * 0.5
        assert command == "test -n $DB_PASSWORD"  # the shell expands it, as a word
        assert check_env == env
        host.finish(pid, 1)
        assert probe.reason == "exit status 1"
        host.advance(0.5)
    host.finish(host.last_pid(), 0)
    assert outcome.ready == 1 and outcome.timeouts == 0 and probe.reason is None
    assert len(host.spawned) == 4
    assert str(probe.spec) == "cmd:test -n $DB_PASSWORD"


def test_cmd_probe_still_running_at_the_timeout_is_killed() -> None:
    probe, host, outcome = make("cmd", "sleep 100", timeout=3)
    probe.start()
    pid = host.last_pid()
    host.advance(3)
    assert outcome.timeouts == 1
    assert host.killed == [pid]
    assert probe.reason == "the check command was still running"


def test_timeout_keeps_the_last_finished_attempts_reason() -> None:
    """An attempt still running at the timeout says less than the one before."""
    probe, host, outcome = make("cmd", "check", interval=0.5, timeout=2)
    probe.start()
    host.finish(host.last_pid(), 3)
    host.advance(0.5)  # the second attempt starts, and hangs
    second = host.last_pid()
    host.advance(1.5)
    assert outcome.timeouts == 1 and host.killed == [second]
    assert probe.reason == "exit status 3"


def test_cmd_probe_that_cannot_start_fails_with_the_reason() -> None:
    probe, host, outcome = make("cmd", "true", timeout=1)

    def refuse(*args: object) -> int:
        raise OSError(11, "Resource temporarily unavailable")

    host.spawn_check = refuse  # type: ignore[method-assign]
    probe.start()
    host.advance(1)
    assert outcome.timeouts == 1
    assert probe.reason == "cannot start the check: resource temporarily unavailable"


# -- log -------------------------------------------------------------------------


def test_log_probe_matches_a_line_split_across_reads() -> None:
    probe, _, outcome = make("log", r"^listening on \d+$")
    probe.start()
    probe.feed(b"booting\nlisten")
    assert not outcome.done
    probe.feed(b"ing on 5000\r\n")
    assert outcome.ready == 1
    probe.feed(b"listening on 5000\n")
    assert outcome.ready == 1


def test_log_probe_timeout_says_no_matching_line() -> None:
    probe, host, outcome = make("log", "ready", timeout=1)
    probe.start()
    probe.feed(b"not yet\n")
    host.advance(1)
    assert outcome.timeouts == 1 and probe.reason == "no matching line"
    probe.feed(b"ready\n")
    assert outcome.ready == 0


# -- tcp and http in the loop ------------------------------------------------------


def test_tcp_probe_passes_once_the_port_accepts(listener: socket.socket) -> None:
    probe, host, outcome = make("tcp", "127.0.0.1:$PORT", env={"PORT": port_of(listener)})
    probe.start()
    host.serve(lambda: outcome.done)
    assert outcome.ready == 1 and probe.reason is None
    assert host.watched == {}


def test_tcp_probe_refused_retries_at_interval_then_times_out() -> None:
    port = closed_port()
    probe, host, outcome = make("tcp", "$PORT", interval=0.5, timeout=2, env={"PORT": str(port)})
    probe.start()
    host.serve(lambda: probe.reason is not None)
    assert probe.reason == "connection refused"
    assert host.watched == {} and not outcome.done
    for _ in range(3):
        host.advance(0.5)  # the next attempt
        host.serve(lambda: not host.watched)
        assert probe.reason == "connection refused"
    host.advance(0.5)
    assert outcome.timeouts == 1 and outcome.ready == 0
    assert probe.reason == "connection refused"
    assert host.watched == {}


def ipv6_listener() -> socket.socket | None:
    """A listener on [::1] whose port is closed on 127.0.0.1; None without IPv6."""
    for _ in range(20):
        try:
            six = socket.create_server(("::1", 0), family=socket.AF_INET6)
        except OSError:
            return None
        four = socket.socket()
        try:
            four.bind(("127.0.0.1", six.getsockname()[1]))  # bound, never listening
        except OSError:
            six.close()
            four.close()
            continue
        CLOSED.append(four)
        return six
    return None


def test_localhost_is_127_0_0_1_then_ipv6_without_dns(no_dns: list[str]) -> None:
    six = ipv6_listener()
    if six is None:
        pytest.skip("no IPv6 loopback here")
    with six:
        probe, host, outcome = make("tcp", "localhost:$PORT", env={"PORT": port_of(six)})
        probe.start()
        host.serve(lambda: outcome.done or probe.reason is not None)
    assert outcome.ready == 1, probe.reason  # 127.0.0.1 refused, ::1 accepted
    assert host.spawned == []  # checked in the loop, no child


def test_localhost_refused_on_both(no_dns: list[str]) -> None:
    probe, host, outcome = make("tcp", f"localhost:{closed_port()}")
    probe.start()
    host.serve(lambda: probe.reason is not None)
    assert probe.reason == "connection refused"
    assert host.spawned == [] and not outcome.done


def answer_http(listener: socket.socket, host: FakeHost, answer: bytes) -> bytes:
    """Let the probe connect and send its request; answer it with `answer`."""
    host.serve(lambda: _sending_done(host))
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(10)
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = conn.recv(4096)
            assert chunk, "the probe closed without a request"
            request += chunk
        conn.sendall(answer)
    return request


def _sending_done(host: FakeHost) -> bool:
    """The probe is connected, has sent its request and waits for the answer."""
    keys = list(host.selector.get_map().values())
    return bool(keys) and all(key.events == selectors.EVENT_READ for key in keys)


@pytest.mark.parametrize(
    ("target", "host_header"),
    [
        ("$PORT/health?x=1", "127.0.0.1:{port}"),
        ("127.0.0.1:$PORT/health?x=1", "127.0.0.1:{port}"),
        ("http://127.0.0.1:$PORT/health?x=1#frag", "127.0.0.1:{port}"),
        ("localhost:$PORT/health?x=1", "localhost:{port}"),
    ],
)
def test_http_probe_sends_get_and_passes_on_2xx(
    listener: socket.socket, target: str, host_header: str
) -> None:
    port = port_of(listener)
    probe, host, outcome = make("http", target, env={"PORT": port})
    probe.start()
    request = answer_http(listener, host, b"HTTP/1.1 204 No Content\r\n\r\n")
    host.serve(lambda: outcome.done)
    assert outcome.ready == 1 and probe.reason is None
    lines = request.decode().split("\r\n")
    assert lines[0] == "GET /health?x=1 HTTP/1.0"
    assert f"Host: {host_header.format(port=port)}" in lines


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.0 500 Internal Server Error\r\n\r\n", "HTTP 500"),
        (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "HTTP 404"),
        (b"HTTP/1.1 302 Found\r\n\r\n", "HTTP 302"),
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP answer"),
        (b"", "connection closed without an answer"),
    ],
)
def test_http_probe_failure_reasons(listener: socket.socket, answer: bytes, reason: str) -> None:
    # a long interval: no second attempt before the timeout
    probe, host, outcome = make(
        "http", "$PORT/", interval=10, timeout=3, env={"PORT": port_of(listener)}
    )
    probe.start()
    answer_http(listener, host, answer)
    host.serve(lambda: probe.reason is not None)
    assert probe.reason == reason and not outcome.done
    host.advance(3)
    assert outcome.timeouts == 1 and probe.reason == reason


def test_an_attempt_without_an_answer_fails_after_the_stall_time(listener: socket.socket) -> None:
    """The server accepts (the kernel does) but never answers the GET."""
    probe, host, outcome = make("http", "$PORT/", interval=0.2, env={"PORT": port_of(listener)})
    probe.start()
    host.serve(lambda: _sending_done(host))
    host.advance(STALL - 0.01)
    assert probe.reason is None and host.watched
    host.advance(0.01)
    assert probe.reason == f"no answer within {STALL:g}s"
    assert host.watched == {}  # the socket was dropped
    assert not outcome.done


def test_timeout_during_an_unanswered_attempt(listener: socket.socket) -> None:
    probe, host, outcome = make(
        "http", "$PORT/", interval=5, timeout=2, env={"PORT": port_of(listener)}
    )
    probe.start()
    host.serve(lambda: _sending_done(host))
    host.advance(2)
    assert outcome.timeouts == 1 and probe.reason == "no answer yet"
    assert host.watched == {}


# -- host names: off the loop --------------------------------------------------------


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_host_name_is_checked_by_a_child(no_dns: list[str], kind: str) -> None:
    target = "$DB_HOST:5432" if kind == "tcp" else "http://$DB_HOST:8080/up?token=$TOKEN"
    env = {"DB_HOST": "db.internal", "TOKEN": "s3cret"}
    probe, host, outcome = make(kind, target, interval=0.5, timeout=2, env=env)
    probe.start()
    assert no_dns == []
    _, pid, command, check_env = host.spawned[0]
    assert command == checker_command()
    assert "db.internal" not in command and "s3cret" not in command  # argv is world-readable
    assert check_env[probecheck.KIND] == kind
    assert check_env[probecheck.HOST] == "db.internal"
    assert check_env[probecheck.PORT] == ("5432" if kind == "tcp" else "8080")
    if kind == "http":
        assert check_env[probecheck.PATH] == "/up?token=s3cret"
    assert float(check_env[probecheck.BUDGET]) == STALL
    assert check_env["DB_HOST"] == "db.internal"  # the app's environment (resolver settings)
    host.finish(pid, probecheck.CANNOT_RESOLVE)
    assert probe.reason == "cannot resolve $DB_HOST"  # as written: never a value
    host.advance(0.5)
    assert len(host.spawned) == 2
    host.finish(host.last_pid(), 0)
    assert outcome.ready == 1 and probe.reason is None


def test_a_name_check_still_running_at_the_timeout_is_killed(no_dns: list[str]) -> None:
    probe, host, outcome = make("tcp", "db:5432", timeout=1.5)
    probe.start()
    pid = host.last_pid()
    host.advance(1.5)
    assert outcome.timeouts == 1 and host.killed == [pid]
    assert probe.reason == "no answer yet"


def test_the_checker_command_runs_the_standard_library_only() -> None:
    command = checker_command("/opt/py/bin/python3")
    assert command.startswith("exec /opt/py/bin/python3 -I -S ")
    assert command.endswith("probecheck.py")


# -- cancel --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["cmd", "tcp-name", "file", "log", "tcp"])
def test_cancel_stops_every_callback(kind: str, tmp_path: Path, listener: socket.socket) -> None:
    if kind == "tcp-name":
        probe, host, outcome = make("tcp", "db:1", timeout=2)
    elif kind == "tcp":
        probe, host, outcome = make("tcp", port_of(listener), timeout=2)
    elif kind == "file":
        probe, host, outcome = make("file", "f", timeout=2, cwd=str(tmp_path))
    else:
        probe, host, outcome = make(kind, "true", timeout=2)
    probe.start()
    pending = list(host.checks)
    probe.cancel()
    assert host.watched == {}
    assert sorted(host.killed) == sorted(pending)
    assert host.pending_timers() == []
    (tmp_path / "f").touch()
    probe.feed(b"true\n")
    host.advance(10)
    assert not outcome.done and host.checks == {}
    assert len(host.spawned) == len(pending)  # no new attempt


# -- the grammar ---------------------------------------------------------------------

PORTS = st.one_of(
    st.integers(1, 65535).map(str), st.sampled_from(["$PORT", "${PORT}", "$P2", "5$N"])
)
HOSTS = st.sampled_from(
    ["127.0.0.1", "localhost", "db", "db-1.internal", "[::1]", "$HOST", "${DB}.svc", "10.0.0.7"]
)
PATHS = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="#$"), max_size=12
).map(lambda p: "/" + p)
WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda t: t.strip() == t
)


@st.composite
def probe_texts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["tcp", "http-short", "http-url", "file", "cmd", "log"]))
    if kind == "tcp":
        host = draw(st.one_of(st.just(""), HOSTS.map(lambda h: h + ":")))
        return f"tcp:{host}{draw(PORTS)}"
    if kind == "http-short":
        host = draw(st.one_of(st.just(""), HOSTS.map(lambda h: h + ":")))
        return f"http:{host}{draw(PORTS)}{draw(PATHS)}"
    if kind == "http-url":
        port = draw(st.one_of(st.just(""), PORTS.map(lambda p: ":" + p)))
        return f"http://{draw(HOSTS)}{port}{draw(PATHS)}"
    if kind == "file":
        return "file:" + draw(WORDS).replace("$", "$$")
    if kind == "cmd":
        return "cmd:" + draw(WORDS)
    import re

    return "log:" + re.escape(draw(WORDS))


@settings(deadline=None, max_examples=300)
@given(probe_texts())
def test_probe_text_round_trips_as_written(text: str) -> None:
    spec = _probe(text, "here", 60.0)
    assert str(spec) == text  # notices show exactly what was written
    assert _probe(str(spec), "here", 60.0) == spec


@settings(deadline=None)
@given(st.integers(-10, 70000))
def test_tcp_ports_must_be_1_to_65535(port: int) -> None:
    spec = ProbeSpec("tcp", f"db:{port}")
    if 1 <= port <= 65535:
        spec.validate()
        assert spec.endpoint() == Endpoint("db", str(port))
    else:
        with pytest.raises(ProbeError, match="not a number from 1 to 65535"):
            spec.validate()


SECRET = "S3CR3T"


@settings(deadline=None, max_examples=300)
@given(
    st.sampled_from(["tcp:$V:5432", "tcp:$V", "http:$V:80/", "http:80/$V", "http://h:$V/x"]),
    st.text(max_size=20),
)
def test_a_value_is_one_part_and_never_shown(target: str, tail: str) -> None:
    """Whatever a variable holds, it fills one part (host, port or path) and
    cannot add syntax; an error about it never shows it."""
    kind = target.partition(":")[0]
    spec = ProbeSpec(
        kind, target.partition(":")[2] if kind != "http" or "//" not in target else target
    )
    value = SECRET + tail
    try:
        endpoint = spec.endpoint({"V": value})
    except ProbeError as exc:
        assert SECRET not in str(exc)
        assert "$V" in str(exc)
        return
    # it passed: the value is exactly one well-formed part
    parts = (endpoint.host, endpoint.port, endpoint.path)
    assert sum(value in part for part in parts) == 1
    assert all(0x21 <= ord(c) <= 0x7E for c in endpoint.path)
    assert endpoint.port.isdigit() and 1 <= int(endpoint.port) <= 65535


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp:notaport", "port 'notaport' is not a number from 1 to 65535"),
        ("tcp:0", "port '0'"),
        ("tcp:65536", "port '65536'"),
        ("tcp:db:", "no port"),
        ("tcp:db:5432/x", "no path"),
        ("tcp:[::1", "[ADDRESS]"),
        ("tcp:$PORT$", "a lone $"),
        ("tcp:bad_host!:1", "host 'bad_host!'"),
        ("tcp:1.2.3.999:80", "host '1.2.3.999'"),
        ("http:localhost/health", "port 'localhost'"),
        ("http://:80/", "no host"),
        ("http://u:p@db/", "user name or password"),
        ("http:$PORT/a b", "spaces"),
        ("http:$PORT/caf\u00e9", "URL path"),
        ("http:::1:80/", "brackets"),
        ("https://example.com/", "cmd:curl -fsk -o /dev/null https://example.com/"),
        ("https:$PORT/x", "https probes are not supported"),
        ("cmd:true\x00", "NUL"),
        ("log:a\x00", r"write \x00"),
        ("log:\udcff", "not valid UTF-8"),
        ("cmd:echo \udcff", "not valid UTF-8"),
        ("log:(?u)x", "bad regular expression"),
        ("log:a{99999999999}", "bad regular expression"),
        ("file:a$", "a lone $"),
    ],
)
def test_bad_probes_are_rejected_at_load_time(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        _probe(text, "corral.toml: processes.web.ready", 60.0)
    line = str(info.value)
    assert line.startswith("corral.toml: processes.web.ready: ")
    assert message in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp:5000", Endpoint("", "5000")),
        ("tcp:db:5432", Endpoint("db", "5432")),
        ("tcp:::1:5000", Endpoint("::1", "5000")),
        ("tcp:[::1]:5000", Endpoint("::1", "5000")),
        ("http:5000", Endpoint("", "5000", "/")),
        ("http:5000?ok", Endpoint("", "5000", "/?ok")),
        ("http:127.0.0.1:5000/", Endpoint("127.0.0.1", "5000", "/")),
        ("http:localhost:5000/health", Endpoint("localhost", "5000", "/health")),
        ("http:[::1]:5000/h", Endpoint("::1", "5000", "/h")),
        ("http://db/", Endpoint("db", "80", "/")),
        ("http://db:8080", Endpoint("db", "8080", "/")),
        ("HTTP://db:8080/x#y", Endpoint("db", "8080", "/x")),
    ],
)
def test_probe_forms(text: str, expected: Endpoint) -> None:
    spec = _probe(text, "here", 60.0)
    assert spec.endpoint() == expected
    assert str(spec) == text


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        (1e-300, "at least 0.01"),
        (0, "at least 0.01"),
        (float("nan"), "0 or more"),
        ("1e999", "0 or more"),
    ],
)
def test_probe_interval_limits(interval: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        _probe({"probe": "tcp:1", "interval": interval}, "here", 60.0)


# -- the formation's check -----------------------------------------------------------


def test_formation_keeps_the_probe_as_written() -> None:
    policy = Policy(ready=ProbeSpec("tcp", "$HOST:$PORT"))
    assert _instance_policy(policy, {"HOST": "db", "PORT": "5432"}) is policy


@pytest.mark.parametrize(
    ("target", "env", "message"),
    [
        ("tcp:$NOPE", {}, "ready tcp:$NOPE: $NOPE is not set"),
        ("tcp:$PORT", {"PORT": "abc"}, "port '$PORT' is not a number from 1 to 65535"),
        ("http:$PORT/", {"PORT": "99999"}, "port '$PORT'"),
        ("tcp:$H:1", {"H": "a b"}, "host '$H'"),
        ("http:1/$P", {"P": "x y"}, "URL path '/$P'"),
        ("file:$DIR/x", {}, "$DIR is not set"),
    ],
)
def test_formation_rejects_what_the_environment_breaks(
    target: str, env: dict[str, str], message: str
) -> None:
    kind, _, rest = target.partition(":")
    with pytest.raises(UsageError) as info:
        _instance_policy(Policy(ready=ProbeSpec(kind, rest)), env)
    assert message in str(info.value)
    for value in env.values():
        assert value not in str(info.value)


def test_formation_leaves_cmd_and_log_to_their_own_rules() -> None:
    for spec in (ProbeSpec("cmd", "test -n $UNSET"), ProbeSpec("log", "ready$")):
        policy = Policy(ready=spec)
        assert _instance_policy(policy, {}) is policy


# -- the probecheck child ----------------------------------------------------------


def run_checker(**params: str) -> int:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CORRAL_")}
    env.update(params)
    command = [sys.executable, "-I", "-S", probecheck.__file__]
    return subprocess.run(command, env=env, timeout=30, check=False).returncode


def checker_params(kind: str, port: int | str, path: str = "/") -> dict[str, str]:
    return {
        probecheck.KIND: kind,
        probecheck.HOST: "127.0.0.1",
        probecheck.PORT: str(port),
        probecheck.PATH: path,
        probecheck.BUDGET: "10",
    }


def test_checker_tcp(listener: socket.socket) -> None:
    assert run_checker(**checker_params("tcp", port_of(listener))) == 0
    code = run_checker(**checker_params("tcp", closed_port()))
    assert probecheck.reason(code, "h", 1) == "connection refused"


def test_checker_takes_a_huge_budget(listener: socket.socket) -> None:
    params = {**checker_params("tcp", port_of(listener)), probecheck.BUDGET: "1e300"}
    assert run_checker(**params) == 0


def test_checker_bad_call() -> None:
    assert run_checker() == probecheck.BAD_CALL
    assert run_checker(**checker_params("udp", 1)) == probecheck.BAD_CALL


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", None),
        (b"HTTP/1.1 503 Service Unavailable\r\n\r\n", "HTTP 503"),
        (b"HTTP/1.1 599 Odd\r\n\r\n", "HTTP 5xx"),
        (b"hello\r\n", "not an HTTP answer"),
    ],
)
def test_checker_http(listener: socket.socket, answer: bytes, reason: str | None) -> None:
    params = checker_params("http", port_of(listener), "/up?x=1")
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", probecheck.__file__],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}, **params},
    )
    try:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += conn.recv(4096)
            assert request.startswith(b"GET /up?x=1 HTTP/1.0\r\n")
            conn.sendall(answer)
        code = child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
    assert probecheck.reason(code, "h", 1) == reason


@settings(deadline=None)
@given(st.integers(100, 599))
def test_every_http_status_survives_the_exit_status(code: int) -> None:
    assert probecheck.status(f"HTTP/1.1 {code} Whatever\r\n".encode()) == code
    if 200 <= code < 300:
        return
    exit_status = probecheck.status_exit(code)
    assert 0 < exit_status < 128  # never mistaken for a death by signal
    shown = probecheck.reason(exit_status, "h", 1)
    assert shown in (f"HTTP {code}", f"HTTP {code // 100}xx")


def test_exit_statuses_are_distinct() -> None:
    codes = [probecheck.READY, probecheck.BAD_CALL, probecheck.CANNOT_RESOLVE]
    codes += [probecheck.NO_ANSWER, probecheck.NOT_HTTP, probecheck.CLOSED, probecheck.OTHER_ERROR]
    codes += [probecheck.ERRNO_BASE + i for i in range(len(probecheck.ERRNOS))]
    codes += [probecheck.CLASS_BASE + i for i in range(1, 6)]
    codes += [probecheck.STATUS_BASE + i for i in range(len(probecheck.STATUSES))]
    assert len(set(codes)) == len(codes) and max(codes) < 128
    reasons = [probecheck.reason(c, "h", 1) for c in codes]
    assert len(set(reasons)) == len(reasons)
