"""Readiness probes gating dependents: http, tcp, file, cmd, log; timeouts."""

from __future__ import annotations

import pytest

from tests.lifecycle.helpers import free_base_port
from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    count,
    events,
    in_order,
    index,
    parsed,
    run_corral,
    system,
    texts,
    timed,
)

FETCH = """
import sys, urllib.request
url = sys.argv[1]
with urllib.request.urlopen(url, timeout=5) as resp:
    print("fetched:", resp.status, resp.read().decode().strip(), flush=True)
"""


@pytest.mark.parametrize(
    "probe", ["http:$PORT/", "http://127.0.0.1:$PORT/hello.txt"], ids=["short", "url"]
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
    ("probe", "shown"),
    [
        ("http:$PORT/", "http:{port}/"),
        ("http://127.0.0.1:$PORT/hello.txt", "http://127.0.0.1:{port}/hello.txt"),
    ],
    ids=["short", "url"],
)
def test_ready_line_shows_the_probe_as_given(app_dir, mark, probe, shown):
    """`web.1 ready (PROBE)` shows the probe as written, with $PORT filled in."""
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
    assert line == f"web.1 ready ({shown.format(port=base)})", line
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
    assert f"web.1 not ready after 1.5s (http:{base}/missing); stopping" in system(r.out)
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
    shown = probe.replace("$PORT", str(base))
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
    assert "web.1 not ready after 0.5s (file:never.flag); stopping" in system(r.out), r.out
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
        "web.1 not ready after 1s (file:never.flag); stopping",
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
    assert index(sys_lines, "web.1 started") > index(sys_lines, "db.2 ready (file:db.2.flag)")
    assert index(sys_lines, "web.1 started") > index(sys_lines, "db.1 ready (file:db.1.flag)")
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
