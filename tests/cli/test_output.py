"""Output: `HH:MM:SS name | text`, padding, system lines, prefix options, colour."""

from __future__ import annotations

import re
import signal

import pytest

from tests.cli.helpers import run_in_pty
from tests.support import (
    TIME,
    assert_no_traceback,
    entries,
    run_corral,
    split_line,
    started_pids,
    texts,
)

# Two processes where the exit order is fixed: `late` waits for `early`'s
# file, so every line of `early` is written before `late` exits.
ORDERED = (
    "web: echo web out; echo web err >&2; touch web.done; sleep 30\n"
    "worker_long_name: while [ ! -e web.done ]; do sleep 0.02; done; echo worker out; exit 3\n"
)


def test_line_format_padding_and_system_lines(app_dir):
    d = app_dir(Procfile=ORDERED)
    r = run_corral("start", "-t", "1", cwd=d)
    assert_no_traceback(r)
    assert r.rc == 3, r
    assert r.err == ""
    width = len("worker_long_name.1")
    # every line: HH:MM:SS, a space, the name padded to the longest name, " | "
    got = entries(r.out, width)
    pids = started_pids(r.out)
    assert set(pids) == {"web.1", "worker_long_name.1"}
    assert ("system", f"web.1 started (pid={pids['web.1']})") in got
    assert ("system", f"worker_long_name.1 started (pid={pids['worker_long_name.1']})") in got
    assert ("system", "worker_long_name.1 stopped (rc=3)") in got
    assert ("system", f"sending SIGTERM to web.1 (pid {pids['web.1']})") in got
    assert ("system", "web.1 stopped (rc=143)") in got
    # child stdout and stderr both reach corral's stdout
    assert texts(r.out, "web.1", width) == ["web out", "web err"]
    assert texts(r.out, "worker_long_name.1", width) == ["worker out"]
    order = [t for _, t in got]
    assert order.index("worker_long_name.1 stopped (rc=3)") < order.index(
        f"sending SIGTERM to web.1 (pid {pids['web.1']})"
    )


def test_exact_line_layout(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", cwd=d)
    assert r.rc == 0, r
    # width is at least 6, the width of "system"
    for line in r.lines:
        assert re.fullmatch(TIME + r" (system|web\.1 ) \| .*", line), line
    assert any(re.fullmatch(TIME + r" web\.1  \| hello", line) for line in r.lines), r.out
    assert any(re.fullmatch(TIME + r" system \| web\.1 started \(pid=\d+\)", x) for x in r.lines)
    assert any(re.fullmatch(TIME + r" system \| web\.1 stopped \(rc=0\)", x) for x in r.lines)


def test_padding_follows_longest_instance_name(app_dir):
    d = app_dir(Procfile="a: echo A\nabcdefgh: sleep 30\n")
    r = run_corral("start", "-t", "1", "-c", "abcdefgh=10", "--no-timestamp", cwd=d)
    width = len("abcdefgh.10")
    got = entries(r.out, width, timestamp=False)
    assert ("a.1", "A") in got
    assert ("system", "abcdefgh.10 stopped (rc=143)") in got


def test_no_timestamp_drops_only_the_time(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", "--no-timestamp", cwd=d)
    assert r.rc == 0, r
    assert "web.1  | hello" in r.lines
    assert any(re.fullmatch(r"system \| web\.1 started \(pid=\d+\)", x) for x in r.lines), r.out
    assert "system | web.1 stopped (rc=0)" in r.lines
    assert not any(re.search(TIME, x) for x in r.lines), r.out


def test_no_prefix_prints_bare_lines(app_dir):
    d = app_dir(Procfile="web: echo hello; echo oops >&2\n")
    r = run_corral("start", "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert r.lines[-1] == "web.1 stopped (rc=0)"
    assert "hello" in r.lines and "oops" in r.lines
    assert re.fullmatch(r"web\.1 started \(pid=\d+\)", r.lines[0]), r.out
    assert not any(" | " in x for x in r.lines), r.out


def test_quiet_hides_lines_but_not_start_and_stop(app_dir):
    d = app_dir(
        Procfile="web: echo web says; echo web err >&2; touch w.done; sleep 30\n"
        "worker: while [ ! -e w.done ]; do sleep 0.02; done; echo worker says\n"
    )
    r = run_corral("start", "-t", "1", "-q", "web", cwd=d)
    assert r.rc == 0, r
    got = entries(r.out, 8)
    assert not [t for n, t in got if n == "web.1"], r.out
    assert "web says" not in r.out and "web err" not in r.out
    assert ("worker.1", "worker says") in got
    system = [t for n, t in got if n == "system"]
    assert any(re.fullmatch(r"web\.1 started \(pid=\d+\)", t) for t in system), r.out
    assert "web.1 stopped (rc=143)" in system


# -- colour -------------------------------------------------------------------

ESC = "\x1b"
# the line shape honcho uses: reset, colour, the whole prefix, reset, text
COLOURED = re.compile(
    re.escape(f"{ESC}[0m{ESC}[") + r"(?P<code>[0-9;]+)m"
    r"(?P<prefix>" + TIME + r" (?P<name>\S+) *\| )" + re.escape(f"{ESC}[0m") + r"(?P<text>.*)"
)


# every instance prints one line, then waits; `done` exits once all printed
def _palette_procfile(n: int) -> str:
    return (
        "a: echo line $PS; touch ready.$PS; sleep 30\n"
        f"done: while [ $(ls | grep -c '^ready') -lt {n} ]; do sleep 0.02; done; exit 0\n"
    )


def _colour_codes(out: str) -> dict[str, str]:
    codes = {}
    for line in out.splitlines():
        m = COLOURED.fullmatch(line)
        if m:
            codes[m.group("name")] = m.group("code")
    return codes


def _assert_uncoloured(out: str) -> None:
    assert ESC not in out, out


def test_no_colour_when_stdout_is_a_pipe(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", cwd=d)
    assert r.rc == 0 and "hello" in r.out, r
    _assert_uncoloured(r.out)


def test_force_color_enables_honcho_palette_in_order(app_dir):
    d = app_dir(Procfile=_palette_procfile(7))
    r = run_corral("start", "-t", "1", "-c", "a=7", env={"FORCE_COLOR": "1"}, cwd=d)
    assert r.rc == 0, r
    codes = _colour_codes(r.out)
    expected = ["36", "33", "32", "35", "31", "34", "36;1"]
    assert [codes.get(f"a.{i}") for i in range(1, 8)] == expected, r.out
    # the colour covers the whole prefix (time and padded name), not the text
    for line in r.out.splitlines():
        m = COLOURED.fullmatch(line)
        if m and m.group("name").startswith("a."):
            assert m.group("text") == f"line {m.group('name')}"
            assert m.group("prefix").endswith(f"{m.group('name'):<6} | ")
    # system lines are never coloured
    system = [x for x in r.out.splitlines() if " system | " in x]
    assert system and all(ESC not in x for x in system), r.out
    assert all(re.match(TIME + " system", x) for x in system), system


def test_palette_continues_across_types(app_dir):
    d = app_dir(
        Procfile="first: echo one; touch r.$PS; sleep 30\n"
        "second: echo two; touch r.$PS; sleep 30\n"
        "done: while [ $(ls | grep -c '^r[.]') -lt 3 ]; do sleep 0.02; done\n"
    )
    r = run_corral("start", "-t", "1", "-c", "first=2", env={"FORCE_COLOR": "1"}, cwd=d)
    codes = _colour_codes(r.out)
    assert codes.get("first.1") == "36" and codes.get("first.2") == "33", r.out
    assert codes.get("second.1") == "32", r.out


def test_no_color_env_disables_colour(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_in_pty("start", cwd=d, env={"NO_COLOR": "1"})
    assert r.rc == 0 and "hello" in r.out, r
    _assert_uncoloured(r.out)


def test_colour_by_default_on_a_terminal(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_in_pty("start", cwd=d)
    assert r.rc == 0, r
    web = [x for x in r.lines if "hello" in x]
    assert len(web) == 1, r.out
    m = COLOURED.fullmatch(web[0])
    assert m and m.group("code") == "36" and m.group("text") == "hello", web[0]
    system = [x for x in r.lines if "system" in x]
    assert system and all(ESC not in x for x in system), r.out


def test_no_colour_options_on_a_terminal(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    for args in (
        ("start", "--no-colour"),
        ("start", "--no-color"),
        ("--no-colour", "start"),
        ("--no-color", "start"),
        ("start", "--colour", "never"),
    ):
        r = run_in_pty(*args, cwd=d)
        assert r.rc == 0 and "hello" in r.out, (args, r)
        assert ESC not in r.out, (args, r.out)


def test_no_colour_beats_force_color(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    for args in (("start", "--no-colour"), ("--no-color", "start")):
        r = run_corral(*args, env={"FORCE_COLOR": "1"}, cwd=d)
        assert r.rc == 0 and "hello" in r.out, r
        _assert_uncoloured(r.out)


def test_colour_always_on_a_pipe(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", "--colour", "always", cwd=d)
    assert r.rc == 0, r
    line = next(x for x in r.lines if x.endswith("hello"))
    m = COLOURED.fullmatch(line)
    assert m and m.group("code") == "36", line


def test_colour_with_no_timestamp_and_no_prefix(app_dir):
    d = app_dir(Procfile="web: echo hello\n")
    r = run_corral("start", "--no-timestamp", env={"FORCE_COLOR": "1"}, cwd=d)
    assert f"{ESC}[0m{ESC}[36mweb.1  | {ESC}[0mhello" in r.lines, r.out
    r = run_corral("start", "--no-prefix", env={"FORCE_COLOR": "1"}, cwd=d)
    assert "hello" in r.lines, r.out
    _assert_uncoloured(r.out)


def test_split_line_helper_rejects_bad_padding():
    # the helper itself must be able to fail
    with pytest.raises(AssertionError):
        split_line("12:00:00 web.1 | x", 6)
    assert split_line("12:00:00 web.1  | x", 6) == ("web.1", "x")


def test_sigterm_line_format(live, app_dir):
    d = app_dir(Procfile="web: sleep 30\n")
    proc = live("start", "-t", "1", cwd=d)
    proc.wait_line("web.1 started")
    proc.send(signal.SIGTERM)
    r = proc.finish()
    assert r.rc == 143, r
    assert any(re.fullmatch(TIME + r" system \| SIGTERM received", x) for x in r.lines), r.out
