"""Every bad input: one `corral: error: ...` line on stderr, rc != 0, no traceback."""

from __future__ import annotations

import pytest

from tests.support import assert_one_error, run_corral

GOOD = "web: sleep 30\nworker: sleep 30\n"

# (id, files, args, env, fragments the message must contain)
CASES = [
    ("missing-procfile", {}, ("start",), None, ("Procfile",)),
    ("missing-procfile-f", {"Procfile": GOOD}, ("start", "-f", "Nope"), None, ("Nope",)),
    ("procfile-is-a-dir", {"Procfile/x": ""}, ("start",), None, ("Procfile",)),
    (
        "malformed-procfile",
        {"Procfile": "web: a\n\nnot an entry\n"},
        ("start",),
        None,
        ("Procfile:3: ",),
    ),
    ("bad-name", {"Procfile": "web: a\nweb.x: b\n"}, ("start",), None, ("Procfile:2: ", "web.x")),
    ("duplicate", {"Procfile": "web: a\nweb: b\n"}, ("start",), None, ("Procfile:2: ", "web")),
    ("empty-procfile", {"Procfile": "\n# nothing\n"}, ("start",), None, ("Procfile",)),
    ("procfile-not-utf8", {"Procfile": None}, ("start",), None, ("Procfile:2: ",)),
    ("c-no-count", {"Procfile": GOOD}, ("start", "-c", "web"), None, ("web",)),
    ("c-not-number", {"Procfile": GOOD}, ("start", "-c", "web=x"), None, ("web=x",)),
    ("c-negative", {"Procfile": GOOD}, ("start", "-c", "web=-1"), None, ("web=-1",)),
    ("c-unknown", {"Procfile": GOOD}, ("start", "-c", "nope=2"), None, ("nope",)),
    ("unknown-process", {"Procfile": GOOD}, ("start", "nope"), None, ("nope",)),
    (
        "missing-env-file",
        {"Procfile": GOOD},
        ("start", "-e", "missing.env"),
        None,
        ("missing.env",),
    ),
    (
        "unparsable-env",
        {"Procfile": GOOD, ".env": "A=1\nB='open\n"},
        ("start",),
        None,
        (".env:2: ",),
    ),
    ("p-not-number", {"Procfile": GOOD}, ("start", "-p", "abc"), None, ("abc",)),
    ("p-zero", {"Procfile": GOOD}, ("start", "-p", "0"), None, ("0",)),
    ("p-too-big", {"Procfile": GOOD}, ("start", "-p", "70000"), None, ("70000",)),
    ("port-env-bad", {"Procfile": GOOD}, ("start",), {"PORT": "http"}, ("http",)),
    ("port-dotenv-bad", {"Procfile": GOOD, ".env": "PORT=x1\n"}, ("start",), None, ("x1",)),
    ("t-not-number", {"Procfile": GOOD}, ("start", "-t", "soon"), None, ("soon",)),
    ("t-negative", {"Procfile": GOOD}, ("start", "-t", "-1"), None, ("-1",)),
    ("timeout-env-bad", {"Procfile": GOOD}, ("start",), {"CORRAL_TIMEOUT": "x"}, ("x",)),
    ("log-format", {"Procfile": GOOD}, ("start", "--log-format", "xml"), None, ("xml",)),
    ("log-format-env", {"Procfile": GOOD}, ("start",), {"CORRAL_LOG_FORMAT": "yaml"}, ("yaml",)),
    (
        "no-timestamp-env",
        {"Procfile": GOOD},
        ("start",),
        {"CORRAL_NO_TIMESTAMP": "maybe"},
        ("CORRAL_NO_TIMESTAMP", "maybe"),
    ),
    (
        "no-prefix-env",
        {"Procfile": GOOD},
        ("start",),
        {"CORRAL_NO_PREFIX": "perhaps"},
        ("CORRAL_NO_PREFIX", "perhaps"),
    ),
    ("colour-option", {"Procfile": GOOD}, ("start", "--colour", "sometimes"), None, ("sometimes",)),
    ("colour-env", {"Procfile": GOOD}, ("start",), {"CORRAL_COLOUR": "rainbow"}, ("rainbow",)),
    (
        "concurrency-env",
        {"Procfile": GOOD},
        ("start",),
        {"CORRAL_CONCURRENCY": "web=?"},
        ("web=?",),
    ),
    ("processes-env", {"Procfile": GOOD}, ("start",), {"CORRAL_PROCESSES": "nope"}, ("nope",)),
    ("app-root-missing", {}, ("-d", "no/such/dir", "start"), None, ("no/such/dir",)),
    ("app-root-env-missing", {}, ("start",), {"CORRAL_APP_ROOT": "nowhere"}, ("nowhere",)),
    ("check-bad-procfile", {"Procfile": "web: a\nbad\n"}, ("check",), None, ("Procfile:2: ",)),
    (
        "check-bad-env",
        {"Procfile": GOOD, ".env": "ok=1\nnot ok\n"},
        ("check",),
        None,
        (".env:2: ",),
    ),
    ("check-missing-env", {"Procfile": GOOD}, ("check", "-e", "gone.env"), None, ("gone.env",)),
    ("run-no-command", {}, ("run",), None, ("run",)),
    ("run-bad-env", {".env": "A=1\nB C\n"}, ("run", "true"), None, (".env:2: ",)),
    ("run-missing-env", {}, ("run", "-e", "gone.env", "true"), None, ("gone.env",)),
]


@pytest.mark.parametrize(
    "files, args, env, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(app_dir, files, args, env, fragments):
    d = app_dir()
    for name, content in files.items():
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:  # invalid UTF-8 on line 2
            path.write_bytes(b"web: ok\nworker: echo \xff\xfe\n")
        else:
            path.write_text(content)
    r = run_corral(*args, cwd=d, env=env, timeout=10)
    assert_one_error(r, *fragments)


def test_error_exit_code_is_nonzero_and_nothing_runs(app_dir, mark):
    # a bad option after a good Procfile: nothing may be started first
    from tests.support import marked_pids

    d = app_dir(Procfile="web: sleep 30\n")
    r = run_corral("start", "-c", "web=2,bogus=1", cwd=d)
    assert_one_error(r)
    assert r.rc == 1
    assert not marked_pids(mark)


def test_assert_one_error_can_fail(app_dir):
    d = app_dir(Procfile="web: true\n")
    with pytest.raises(AssertionError):
        assert_one_error(run_corral("start", cwd=d))
