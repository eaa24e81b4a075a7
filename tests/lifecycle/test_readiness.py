"""Readiness probes gating dependents: http, tcp, file, cmd, log; timeouts."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time

import pytest

from tests.lifecycle.helpers import free_base_port
from tests.support import (
    CORRAL,
    assert_no_traceback,
    assert_nothing_left,
    assert_one_error,
    base_env,
    count,
    events,
    in_order,
    index,
    parsed,
    run_corral,
    system,
    texts,
    timed,
    wait_for,
)

FETCH = """
import sys, urllib.request
url = sys.argv[1]
with urllib.request.urlopen(url, timeout=5) as resp:
    print("fetched:", resp.status, resp.read().decode().strip(), flush=True)
"""


@pytest.mark.parametrize(
    "probe",
    [
        "http:$PORT/",
        "http://127.0.0.1:$PORT/hello.txt",
        "http:127.0.0.1:$PORT/",
        "http:localhost:$PORT/hello.txt",
        "http://localhost:$PORT/hello.txt",
    ],
    ids=["short", "url", "host-port", "localhost-port", "localhost-url"],
)
def test_http_probe_gates_a_client(app_dir, mark, probe):
    """A real HTTP server that needs ~0.5 s to come up; the client starts only
    once GET returns 2xx, and can fetch from it."""
    base = free_base_port(2)
    d = app_dir(
        Procfile="web: sleep 0.5; exec python3 -m http.server $PORT --bind 127.0.0.1\n"
        f"client: exec python3 fetch.py http://127.0.0.1:{base}/hello.txt\n",
        **{"fetch.py": FETCH, "hello.txt": "hello from web\n"},
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "-p",
        str(base),
        "--ready",
        f"web={probe}",
        "--after",
        "client:web",
        cwd=d,
        timeout=30,
    )
    assert_no_traceback(r)
    assert r.rc == 0, r  # the client's exit 0 ends the run
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "web.1 started (pid=",
        "client.1 waiting for web",
        "web.1 ready (",
        "client.1 started (pid=",
        "client.1 stopped (rc=0)",
        "sending SIGTERM to web.1",
    )
    assert texts(r.out, "client.1") == ["fetched: 200 hello from web"], r.out
    assert_nothing_left(mark)


@pytest.mark.parametrize(
    "probe",
    ["http:$PORT/", "http://127.0.0.1:$PORT/hello.txt", "http:localhost:${PORT}/"],
    ids=["short", "url", "braces"],
)
def test_ready_line_shows_the_probe_as_given(app_dir, mark, probe):
    """`web.1 ready (PROBE)` shows the probe exactly as written: `$PORT`, not
    its value (a notice never shows a value from the environment)."""
    base = free_base_port(2)
    d = app_dir(
        Procfile="web: exec python3 -m http.server $PORT --bind 127.0.0.1\nclient: echo go\n",
        **{"hello.txt": "hello\n"},
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "-p",
        str(base),
        "--ready",
        f"web={probe}",
        "--after",
        "client:web",
        cwd=d,
        timeout=20,
    )
    assert r.rc == 0, r
    line = system(r.out)[index(system(r.out), "web.1 ready (")]
    assert line == f"web.1 ready ({probe})", line
    assert_nothing_left(mark)


def test_http_probe_needs_a_2xx(app_dir, mark):
    base = free_base_port(2)
    d = app_dir(
        Procfile="web: exec python3 -m http.server $PORT --bind 127.0.0.1\nclient: echo ran\n"
    )
    r, took = timed(
        lambda: run_corral(
            "start",
            "-t",
            "1",
            "-p",
            str(base),
            "--ready",
            "web=http:$PORT/missing",
            "--ready-timeout",
            "1.5",
            "--after",
            "client:web",
            cwd=d,
            timeout=20,
        )
    )
    assert_no_traceback(r)
    assert r.rc == 1, r
    # the probe as written, then why its last attempt failed
    line = "web.1 not ready after 1.5s (http:$PORT/missing): HTTP 404; stopping"
    assert line in system(r.out), r.out
    assert "client.1 started" not in r.out
    # the server did answer (with a 404): the probe really asked
    assert any("GET /missing" in t and "404" in t for t in texts(r.out, "web.1")), r.out
    assert took < 5
    assert_nothing_left(mark)


LISTENER = """
import socket, sys, time
time.sleep(0.5)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    conn, _ = s.accept()
    try:
        conn.sendall(b"hi\\n")
    except OSError:
        pass
    conn.close()
"""

CONNECT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) as c:
    print("client got", c.recv(16).decode().strip(), flush=True)
"""


@pytest.mark.parametrize("probe", ["tcp:$PORT", "tcp:127.0.0.1:$PORT"], ids=["port", "host"])
def test_tcp_probe_gates_a_client(app_dir, live, mark, probe):
    base = free_base_port(2)
    d = app_dir(
        Procfile=f"web: exec python3 listener.py $PORT\nclient: exec python3 connect.py {base}\n",
        **{"listener.py": LISTENER, "connect.py": CONNECT},
    )
    proc = live(
        "start",
        "-t",
        "1",
        "-p",
        str(base),
        "--ready",
        f"web={probe}",
        "--after",
        "client:web",
        cwd=d,
    )
    r = proc.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    shown = probe  # as written
    in_order(
        system(r.out),
        "web.1 started",
        "client.1 waiting for web",
        f"web.1 ready ({shown})",
        "client.1 started",
    )
    assert texts(r.out, "client.1") == ["client got hi"]
    # the listener opened its port only after 0.5 s: readiness waited for it
    waited = proc.time_of(f"web.1 ready ({shown})") - proc.time_of("web.1 started")
    assert waited >= 0.4, waited
    assert_nothing_left(mark)


def test_file_probe_gates_a_dependent(app_dir, mark):
    d = app_dir(
        Procfile="web: sleep 0.5; touch web.flag; exec sleep 30\n"
        "client: [ -e web.flag ] && echo client sees the flag\n"
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "--ready",
        "web=file:web.flag",
        "--after",
        "client:web",
        cwd=d,
        timeout=20,
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    in_order(
        system(r.out), "client.1 waiting for web", "web.1 ready (file:web.flag)", "client.1 started"
    )
    assert texts(r.out, "client.1") == ["client sees the flag"]
    assert_nothing_left(mark)


@pytest.mark.parametrize("probe", ["file:web.flag", "cmd:test -e web.flag"], ids=["file", "cmd"])
def test_relative_probe_path_is_the_app_roots(app_dir, mark, probe):
    """Run from elsewhere with -d: a relative path in a probe means the app's
    directory, which is where the processes (and cmd probes) run."""
    d = app_dir(
        **{
            "app/Procfile": "web: sleep 0.3; touch web.flag; exec sleep 30\n"
            "client: [ -e web.flag ] && echo client sees the flag\n",
            "app/corral.toml": f'[processes.web]\nready = "{probe}"\n'
            '[processes.client]\nafter = ["web"]\n',
        }
    )
    r = run_corral("start", "-t", "1", "-d", "app", "--ready-timeout", "2", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    in_order(system(r.out), f"web.1 ready ({probe})", "client.1 started")
    assert texts(r.out, "client.1") == ["client sees the flag"]
    assert_nothing_left(mark)


def test_cmd_probe_gates_a_dependent(app_dir, mark):
    """The check command runs until it exits 0.  (More processes start after
    web, so its first, quick check has exited before start-up is over.)"""
    d = app_dir(
        Procfile="web: sleep 0.5; touch web.flag; exec sleep 30\n"
        "client: [ -e web.flag ] && echo client sees the flag\n"
        "x: exec sleep 30\ny: exec sleep 30\nz: exec sleep 30\n"
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "--ready",
        'web=cmd:test -e web.flag && test -n "$PORT"',
        "--after",
        "client:web",
        "--ready-timeout",
        "5",
        cwd=d,
        timeout=20,
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    in_order(system(r.out), "client.1 waiting for web", "web.1 ready (cmd:", "client.1 started")
    assert texts(r.out, "client.1") == ["client sees the flag"]
    assert_nothing_left(mark)


def test_log_probe_matches_a_line(app_dir, mark):
    d = app_dir(
        Procfile="web: echo booting on $PORT; sleep 0.4; echo listening on $PORT; exec sleep 30\n"
        "client: echo client go\n"
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "--ready",
        r"web=log:^listening on \d+$",
        "--after",
        "client:web",
        cwd=d,
        timeout=20,
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    lines = [f"{name} | {text}" for name, text in parsed(r.out)]
    in_order(
        lines,
        "web.1 | booting on",
        "web.1 | listening on",
        r"web.1 ready (log:^listening on \d+$)",
        "client.1 started",
    )
    assert texts(r.out, "client.1") == ["client go"]
    assert_nothing_left(mark)


def test_probes_from_toml_with_interval_and_timeout(app_dir, mark):
    d = app_dir(
        Procfile="web: exec sleep 30\nclient: echo never\n",
        **{
            "corral.toml": "[processes.web]\n"
            'ready = { probe = "file:never.flag", interval = 0.1, timeout = 0.5 }\n'
            '[processes.client]\nafter = ["web"]\n'
        },
    )
    r, took = timed(lambda: run_corral("start", "-t", "1", cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 1, r
    line = "web.1 not ready after 0.5s (file:never.flag): no such file; stopping"
    assert line in system(r.out), r.out
    assert "client.1 started" not in r.out
    assert took < 3, took
    assert_nothing_left(mark)


READY_TIMEOUT = {
    "option": (("--ready", "web=file:never.flag", "--ready-timeout", "1"), {}),
    "env": ((), {"CORRAL_READY": "web=file:never.flag", "CORRAL_READY_TIMEOUT": "1"}),
}


@pytest.mark.parametrize("how", list(READY_TIMEOUT))
def test_probe_that_never_passes_stops_the_group(app_dir, mark, how):
    args, env = READY_TIMEOUT[how]
    d = app_dir(Procfile="web: exec sleep 30\nclient: echo never\nother: exec sleep 30\n")
    r, took = timed(
        lambda: run_corral(
            "start", "-t", "1", "--after", "client:web", *args, cwd=d, env=env, timeout=20
        )
    )
    assert_no_traceback(r)
    assert r.rc == 1, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "web.1 not ready after 1s (file:never.flag): no such file; stopping",
        "sending SIGTERM to web.1",
    )
    assert index(sys_lines, "sending SIGTERM to other.1") > index(sys_lines, "not ready")
    assert "client.1 started" not in r.out
    assert texts(r.out, "client.1") == []
    assert 0.9 <= took < 4, took
    assert_nothing_left(mark)


def test_ready_env_semicolon_separated(app_dir, mark):
    """CORRAL_READY takes several probes, ';'-separated (probes may hold commas)."""
    d = app_dir(
        Procfile="db: sleep 0.3; touch db.flag; exec sleep 30\n"
        "web: echo web, up; exec sleep 30\n"
        "client: echo client go\n"
    )
    env = {
        "CORRAL_READY": "db=file:db.flag;web=log:^web, up$",
        "CORRAL_AFTER": "web:db,client:web",
    }
    r = run_corral("start", "-t", "1", cwd=d, env=env, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    in_order(
        system(r.out),
        "db.1 ready (file:db.flag)",
        "web.1 started",
        "web.1 ready (log:^web, up$)",
        "client.1 started",
    )
    assert_nothing_left(mark)


def test_no_probe_is_ready_once_started(app_dir, mark):
    d = app_dir(Procfile="db: exec sleep 30\nweb: echo web up\n")
    r = run_corral("start", "-t", "1", "--after", "web:db", cwd=d, timeout=20)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    in_order(sys_lines, "db.1 started", "web.1 started", "web.1 stopped (rc=0)")
    assert count(sys_lines, " ready (") == 0
    assert_nothing_left(mark)


def test_dependent_waits_for_every_instance(app_dir, mark):
    """With db=2, web starts only once both db.1 and db.2 are ready."""
    d = app_dir(
        Procfile='db: [ "$PS" = db.2 ] && sleep 0.5; touch $PS.flag; exec sleep 30\n'
        "web: [ -e db.1.flag ] && [ -e db.2.flag ] && echo both dbs up\n"
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "-c",
        "db=2",
        "--ready",
        "db=file:$PS.flag",
        "--after",
        "web:db",
        cwd=d,
        timeout=20,
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    assert index(sys_lines, "web.1 started") > index(sys_lines, "db.2 ready (file:$PS.flag)")
    assert index(sys_lines, "web.1 started") > index(sys_lines, "db.1 ready (file:$PS.flag)")
    assert texts(r.out, "web.1") == ["both dbs up"]
    assert_nothing_left(mark)


def test_ready_and_waiting_json_events(app_dir, mark):
    d = app_dir(Procfile="web: sleep 0.3; touch web.flag; exec sleep 30\nclient: echo client go\n")
    r = run_corral(
        "start",
        "-t",
        "1",
        "--log-format",
        "json",
        "--ready",
        "web=file:web.flag",
        "--after",
        "client:web",
        cwd=d,
        timeout=20,
    )
    assert r.rc == 0, r
    evs = [e for e in events(r.out) if e.get("stream") == "system"]
    kinds = [(e.get("event"), e.get("process")) for e in evs]
    waiting = kinds.index(("waiting", "client.1"))
    ready = kinds.index(("ready", "web.1"))
    started = kinds.index(("starting", "client.1"))
    assert waiting < ready < started, kinds
    assert evs[waiting]["waiting_for"] == ["web"]
    assert evs[ready]["line"] == "web.1 ready (file:web.flag)"
    assert ("stopping", "web.1") in kinds
    assert_nothing_left(mark)


def test_probe_interval_and_failure_events(app_dir, mark):
    """A cmd probe retried every 0.2 s for 1 s runs about five times; the
    timeout is a `failed` event, then web (ignoring SIGTERM) is stopped and
    killed, each its own JSON event."""
    d = app_dir(
        Procfile="web: trap '' TERM; while :; do sleep 0.05; done\n",
        **{
            "corral.toml": "[processes.web]\n"
            'ready = { probe = "cmd:echo x >> attempts; exit 1", interval = 0.2, timeout = 1 }\n'
        },
    )
    r = run_corral("start", "-t", "0.3", "--log-format", "json", cwd=d, timeout=20)
    assert r.rc == 1, r
    evs = [e for e in events(r.out) if e.get("stream") == "system"]
    kinds = [(e.get("event"), e.get("process")) for e in evs]
    failed = kinds.index(("failed", "web.1"))
    assert "not ready after 1s" in str(evs[failed]["line"])
    assert str(evs[failed]["line"]).endswith("): exit status 1; stopping"), evs[failed]
    stopping = kinds.index(("stopping", "web.1"))
    killing = kinds.index(("killing", "web.1"))
    exited = kinds.index(("exited", "web.1"))
    assert failed < stopping < killing < exited, kinds
    assert evs[stopping]["signal"] == "SIGTERM" and evs[killing]["signal"] == "SIGKILL"
    assert evs[exited]["rc"] == 137
    attempts = len((d / "attempts").read_text().split())
    assert 3 <= attempts <= 7, attempts  # 0.5 s (the default) would give about 2
    assert_nothing_left(mark)


def test_dependency_outside_the_run_is_not_waited_for(app_dir, mark):
    """`corral start web` with web after migrate: migrate is not part of this
    run, so web starts at once instead of waiting forever."""
    d = app_dir(Procfile="migrate: echo migrating\nweb: echo web up\n")
    r = run_corral(
        "start", "--oneshot", "migrate", "--after", "web:migrate", "web", cwd=d, timeout=20
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert "migrate.1" not in r.out
    assert texts(r.out, "web.1") == ["web up"]
    r = run_corral(
        "start",
        "--oneshot",
        "migrate",
        "--after",
        "web:migrate",
        "-c",
        "migrate=0",
        cwd=d,
        timeout=20,
    )
    assert r.rc == 0, r
    assert texts(r.out, "web.1") == ["web up"]


def test_tcp_probe_timeout_says_connection_refused(app_dir, mark):
    base = free_base_port(1)
    d = app_dir(Procfile="web: exec sleep 30\n")
    r = run_corral(
        "start", "-t", "1", "-p", str(base), "--ready", "web=tcp:localhost:$PORT",
        "--ready-timeout", "1", cwd=d, timeout=20,
    )  # fmt: skip
    assert_no_traceback(r)
    assert r.rc == 1, r
    line = "web.1 not ready after 1s (tcp:localhost:$PORT): connection refused; stopping"
    assert line in system(r.out), r.out
    assert_nothing_left(mark)


# -- values from .env are data, never shell code or log text ------------------------

SECRET_ENV = "DB_PASSWORD=x;touch pwned;false;S3CR3T\n"


def test_dotenv_value_never_becomes_shell_code(app_dir, mark):
    """A `$VAR` in a cmd: probe is expanded by the probe's shell, as one word:
    `;` in the value is not a command separator, and the value never shows."""
    d = app_dir(
        Procfile="web: exec sleep 30\n",
        **{
            ".env": SECRET_ENV,
            "corral.toml": "[processes.web]\n"
            'ready = { probe = "cmd:test -n postgres://app:$DB_PASSWORD@localhost/db", '
            "timeout = 1.5 }\n",
        },
    )
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert not (d / "pwned").exists(), "a .env value ran as shell code"
    assert "S3CR3T" not in r.out + r.err
    # dash's `test` sees three words (the value holds spaces): a failure, not code
    line = "(cmd:test -n postgres://app:$DB_PASSWORD@localhost/db): exit status 2"
    assert line in r.out, r.out
    assert_nothing_left(mark)


def test_cmd_probe_sees_the_value_and_shows_the_variable(app_dir, mark):
    d = app_dir(
        Procfile="web: exec sleep 30\nclient: echo go\n",
        **{".env": SECRET_ENV},
    )
    probe = 'cmd:test "$DB_PASSWORD" = "x;touch pwned;false;S3CR3T"'
    r = run_corral(
        "start", "-t", "1", "--ready", f"web={probe}", "--after", "client:web", cwd=d, timeout=20
    )
    assert_no_traceback(r)
    assert r.rc == 0, r
    in_order(system(r.out), f"web.1 ready ({probe})", "client.1 started")
    assert "S3CR3T" not in r.out.replace(probe, "") + r.err
    assert not (d / "pwned").exists()
    assert_nothing_left(mark)


def test_tcp_target_value_never_shows(app_dir, mark):
    """tcp/http/file targets are filled in by the probe; notices keep `$VAR`."""
    base = free_base_port(2)
    d = app_dir(
        Procfile=f"web: exec python3 listener.py {base}\nclient: echo go\n",
        **{"listener.py": LISTENER, ".env": f"WEB_ADDR=127.0.0.1\nWEB_PORT={base}\n"},
    )
    r = run_corral(
        "start",
        "-t",
        "1",
        "-p",
        str(base),
        "--ready",
        "web=tcp:$WEB_ADDR:${WEB_PORT}",
        "--after",
        "client:web",
        cwd=d,
        timeout=20,
    )
    assert r.rc == 0, r
    in_order(system(r.out), "web.1 ready (tcp:$WEB_ADDR:${WEB_PORT})", "client.1 started")
    assert_nothing_left(mark)


# -- load-time checks of what only the environment can tell ---------------------------


@pytest.mark.parametrize(
    ("probe", "dotenv", "fragment"),
    [
        ("tcp:$DB_PORT", "", "$DB_PORT is not set"),
        ("tcp:$DB_PORT", "DB_PORT=notaport\n", "port '$DB_PORT' is not a number"),
        ("http:$HOST:1/", "HOST=a;b\n", "host '$HOST'"),
        ("file:$DIR/flag", "", "$DIR is not set"),
    ],
)
def test_probe_that_the_environment_breaks_is_a_start_error(app_dir, probe, dotenv, fragment):
    d = app_dir(Procfile="web: exec sleep 30\n", **{".env": dotenv})
    r = run_corral("start", "--ready", f"web={probe}", cwd=d, timeout=20)
    line = assert_one_error(r, fragment, f"ready {probe}")
    for value in ("notaport", "a;b"):
        assert value not in line


# -- host names are resolved off the loop ---------------------------------------------

DNS_DROPPER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
open("dns.up", "w").close()
while True:
    s.recv(4096)  # and never answer
    with open("dns.asked", "a") as f:
        f.write("query\\n")
"""


def _netns_available() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    probe = subprocess.run(
        ["unshare", "--net", "--mount", "--", "true"], capture_output=True, timeout=20
    )
    return probe.returncode == 0


needs_netns = pytest.mark.skipif(
    not _netns_available(), reason="needs root and unshare --net --mount"
)


def start_in_netns(d, *args: str) -> subprocess.Popen[bytes]:
    """corral ARGS in a new network and mount namespace: loopback up, and the
    app's `resolv.conf` and `hosts` in place of the system's."""
    script = (
        'mount --bind "$1/resolv.conf" /etc/resolv.conf && mount --bind "$1/hosts" /etc/hosts '
        '&& ip link set lo up && shift && exec "$@"'
    )
    return subprocess.Popen(
        ["unshare", "--net", "--mount", "--", "sh", "-c", script, "sh", str(d), CORRAL, *args],
        cwd=d,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def read_until(proc: subprocess.Popen[bytes], fragment: str, timeout: float) -> str:
    """corral's output up to the first line holding `fragment` (fail after `timeout`)."""
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + timeout
    while fragment.encode() not in out:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, remaining))
        if not ready:
            raise AssertionError(f"no {fragment!r} within {timeout}s: {out.decode()}")
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"corral ended before {fragment!r}: {out.decode()}")
        out += chunk
    return out.decode()


NETNS_FILES = {
    # a DNS server that drops every query, and a resolver that would wait 30 s
    "resolv.conf": "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n",
    "hosts": "127.0.0.1 localhost\n127.0.0.1 dbhost.test\n",
    "dns.py": DNS_DROPPER,
}


@needs_netns
def test_a_host_name_that_dns_never_answers_does_not_block_the_loop(app_dir, mark):
    """web's probe names a host the (dropping) DNS server never answers.  The
    processes started after web still start at once, and SIGTERM acts at once:
    no `getaddrinfo` ever runs inside corral's loop."""
    d = app_dir(
        Procfile="dns: exec python3 dns.py\nweb: exec sleep 30\nother: exec sleep 30\n",
        **NETNS_FILES,
    )
    proc = start_in_netns(
        d,
        "start",
        "-t",
        "1",
        "--ready",
        "dns=file:dns.up",
        "--ready",
        "web=tcp:db.example:5432",
        "--after",
        "web:dns,other:dns",
    )
    try:
        out = read_until(proc, "other.1 started", timeout=10)
        assert "web.1 started" in out
        # web's probe is now waiting for the DNS answer (in its own child)
        wait_for(lambda: (d / "dns.asked").exists(), timeout=10)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert took < 4, took
    assert proc.returncode == 128 + signal.SIGTERM
    assert_nothing_left(mark)


@needs_netns
def test_a_host_name_probe_fails_with_the_timeout(app_dir, mark):
    d = app_dir(Procfile="dns: exec python3 dns.py\nweb: exec sleep 30\n", **NETNS_FILES)
    proc = start_in_netns(
        d,
        "start",
        "-t",
        "1",
        "--ready",
        "dns=file:dns.up",
        "--ready",
        "web=tcp:db.example:5432",
        "--ready-timeout",
        "5",  # room for a first attempt (1 s) to finish on a loaded machine
        "--after",
        "web:dns",
    )
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    # the name as written; the child was given up after one attempt's time
    line = "web.1 not ready after 5s (tcp:db.example:5432): cannot resolve db.example"
    assert line in out.decode(), out
    assert b"Traceback" not in err
    assert_nothing_left(mark)


@needs_netns
def test_a_host_name_from_etc_hosts_passes(app_dir, mark):
    base = free_base_port(3)
    d = app_dir(
        Procfile=f"web: exec python3 listener.py $PORT\nclient: exec python3 connect.py {base}\n",
        **NETNS_FILES,
        **{"listener.py": LISTENER, "connect.py": CONNECT},
    )
    proc = start_in_netns(
        d,
        "start",
        "-t",
        "1",
        "-p",
        str(base),
        "--ready",
        "web=tcp:dbhost.test:$PORT",
        "--after",
        "client:web",
    )
    try:
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, (out, err)
    in_order(system(out.decode()), "web.1 ready (tcp:dbhost.test:$PORT)", "client.1 started")
    assert texts(out.decode(), "client.1") == ["client got hi"]
    assert_nothing_left(mark)
