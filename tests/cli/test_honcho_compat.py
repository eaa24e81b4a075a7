"""Differential tests: honcho 2.0.0 as the oracle.

In-process: honcho's own `parse_procfile`/`expand_processes` against corral's
`procfile.parse`/`formation.expand` on generated Procfiles and `-c` values.
End to end: `honcho start` against `corral start` on one deterministic
Procfile.  Where corral deliberately differs (README "Compatibility", issue 2),
the difference is asserted explicitly rather than papered over.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter

import honcho.environ as henv
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corral import formation, procfile
from corral.errors import CorralError
from tests.support import BIN_DIR, TIME, assert_one_error, base_env, run_corral
from tests.support import CORRAL as CORRAL_BIN

HONCHO = str(BIN_DIR / "honcho")

# -- generators ---------------------------------------------------------------

NAME = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True)
# printable ASCII commands without surrounding blanks (honcho keeps trailing
# blanks, corral strips them; sh does not care, see test_command_whitespace)
COMMAND = (
    st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40)
    .map(str.strip)
    .filter(bool)
)
SEPARATOR = st.sampled_from([": ", ":", ":\t", ":   ", ": \t "])
NOISE = st.one_of(
    st.just(""),
    st.sampled_from([" ", "\t", "  \t "]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(lambda s: "#" + s),
)


@st.composite
def procfiles(draw):
    """(text, [(name, command)]) for a valid Procfile with noise lines."""
    names = draw(st.lists(NAME, min_size=1, max_size=6, unique=True))
    pairs = [(n, draw(COMMAND)) for n in names]
    lines: list[str] = []
    for name, command in pairs:
        lines.extend(draw(st.lists(NOISE, max_size=2)))
        lines.append(f"{name}{draw(SEPARATOR)}{command}")
    lines.extend(draw(st.lists(NOISE, max_size=2)))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    text = eol.join(lines) + (eol if draw(st.booleans()) else "")
    return text, pairs


@st.composite
def formations(draw):
    text, pairs = draw(procfiles())
    names = [n for n, _ in pairs]
    counts = draw(
        st.dictionaries(st.sampled_from(names), st.integers(min_value=0, max_value=4), max_size=6)
    )
    port = draw(st.integers(min_value=1024, max_value=40000))
    return text, pairs, counts, port


def honcho_expand(text, counts, port, env=None):
    processes = henv.parse_procfile(text).processes
    out = []
    for p in henv.expand_processes(processes, concurrency=counts, env=env or {}, port=port):
        out.append((p.name, p.cmd, int(p.env["PORT"]), p.env["HONCHO_PROCESS_NAME"]))
    return out


def corral_expand(text, counts, port, env=None, selected=()):
    entries = procfile.parse(text, "Procfile")
    specs = formation.expand(
        entries, env=env or {}, base_port=port, counts=counts, selected=selected
    )
    return [(s.name, s.command, s.port, s.env["HONCHO_PROCESS_NAME"]) for s in specs], specs


# -- in-process differential --------------------------------------------------

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(procfiles())
def test_parse_agrees_with_honcho(case):
    text, pairs = case
    ours = [(e.name, e.command) for e in procfile.parse(text, "Procfile")]
    theirs = list(henv.parse_procfile(text).processes.items())
    assert ours == theirs == pairs


@FAST
@given(formations())
@example(("web: a\nworker: b\n", [("web", "a"), ("worker", "b")], {"web": 2, "worker": 3}, 5000))
@example(("a: x\nb: y\nc: z\n", [], {"b": 0}, 5000))
def test_expand_agrees_with_honcho(case):
    text, _, counts, port = case
    theirs = honcho_expand(text, counts, port)
    ours, specs = corral_expand(text, counts, port)
    assert ours == theirs
    for s in specs:
        # corral adds foreman's PS; honcho has none
        assert s.env["PS"] == s.name
        assert s.env["PORT"] == str(s.port)


def test_expand_known_values():
    # honcho's own documented example, checked against both
    text = "web: run web\nworker: run worker\n"
    expected = [
        ("web.1", "run web", 5000, "web.1"),
        ("web.2", "run web", 5001, "web.2"),
        ("worker.1", "run worker", 5100, "worker.1"),
        ("worker.2", "run worker", 5101, "worker.2"),
        ("worker.3", "run worker", 5102, "worker.3"),
    ]
    assert honcho_expand(text, {"web": 2, "worker": 3}, 5000) == expected
    assert corral_expand(text, {"web": 2, "worker": 3}, 5000)[0] == expected


LINE_CHARS = st.sampled_from(list("aZ09_-.:# \tx=é"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.text(LINE_CHARS, max_size=12), min_size=1, max_size=5))
@example(["web: ok", "  worker: indented"])
@example(["web: ok", "worker : space before colon"])
def test_corral_errors_or_agrees_with_honcho(lines):
    """On any Procfile, corral either reports an error or runs what honcho runs.

    A line honcho silently skips may make corral fail (the deliberate
    difference), but never make it run a different set of processes.
    """
    text = "\n".join(lines) + "\n"
    try:
        theirs = [(n, c.strip()) for n, c in henv.parse_procfile(text).processes.items()]
    except AssertionError:  # honcho: duplicate names
        theirs = None
    try:
        ours = [(e.name, e.command) for e in procfile.parse(text, "Procfile")]
    except CorralError:
        return
    assert theirs is not None, f"honcho rejects {text!r} (duplicates), corral accepts it"
    assert ours == theirs, f"{text!r}: corral runs {ours}, honcho runs {theirs}"


# -- deliberate differences, asserted -----------------------------------------


@pytest.mark.parametrize(
    "text, lineno",
    [
        ("web: ok\nnot an entry\n", 2),
        ("web: ok\nweb.dot: x\n", 2),
        ("web: ok\nworker:\n", 2),
        ("web: ok\n:nameless\n", 2),
    ],
)
def test_corral_errors_on_lines_honcho_skips(text, lineno):
    assert list(henv.parse_procfile(text).processes) == ["web"]
    with pytest.raises(CorralError, match=rf"^Procfile:{lineno}: "):
        procfile.parse(text, "Procfile")


def test_empty_procfile_honcho_accepts_corral_rejects():
    assert not henv.parse_procfile("# nothing\n\n").processes
    with pytest.raises(CorralError):
        procfile.parse("# nothing\n\n", "Procfile")


def test_dotenv_port_does_not_beat_base_port_in_formation():
    # honcho: a PORT in the app env overrides the base port given to it
    text = "web: a\nworker: b\n"
    theirs = honcho_expand(text, {}, 8000, env={"PORT": "9000"})
    assert [t[2] for t in theirs] == [9000, 9100]
    # corral: the base port decides; PORT in the env is replaced per child
    ours, specs = corral_expand(text, {}, 8000, env={"PORT": "9000"})
    assert [o[2] for o in ours] == [8000, 8100]
    assert [s.env["PORT"] for s in specs] == ["8000", "8100"]


def test_port_stable_under_selection_in_process():
    text = "web: a\nworker: b\nclock: c\n"
    # honcho's `start clock` hands expand_processes only the selected types
    processes = henv.parse_procfile(text).processes
    selected = {"clock": processes["clock"]}
    theirs = henv.expand_processes(selected, env={}, port=5000)
    assert [(p.name, p.env["PORT"]) for p in theirs] == [("clock.1", "5000")]
    ours, _ = corral_expand(text, {}, 5000, selected=["clock"])
    assert [(o[0], o[2]) for o in ours] == [("clock.1", 5200)]


def test_command_whitespace():
    # honcho keeps trailing blanks of a command, corral strips them
    text = "web: echo hi  \t\n"
    assert henv.parse_procfile(text).processes["web"] == "echo hi  \t"
    assert procfile.parse(text, "Procfile")[0].command == "echo hi"


# -- end to end ---------------------------------------------------------------

E2E = (
    'alpha: echo "alpha says hi $PORT $HONCHO_PROCESS_NAME"; echo alpha err >&2; '
    "touch alpha.ready; sleep 30\n"
    "beta_long_name: while [ ! -e alpha.ready ]; do sleep 0.02; done; "
    'echo "beta $PORT $HONCHO_PROCESS_NAME"; exit 3\n'
)


def run_tool(tool, args, cwd, timeout=30):
    for stale in cwd.glob("*.ready"):
        stale.unlink()
    proc = subprocess.run(
        [tool, *args],
        cwd=cwd,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout


def normalise(out: str) -> list[str]:
    lines = []
    for line in out.splitlines():
        m = re.fullmatch(TIME + r" (.*)", line)
        assert m, f"no HH:MM:SS in {line!r}"
        text = re.sub(r"pid[= ]\d+", "pid N", m.group(1))
        lines.append(text)
    return lines


def test_start_output_matches_honcho(app_dir):
    d = app_dir(Procfile=E2E)
    h_rc, h_out = run_tool(HONCHO, ["start", "-c", "alpha=2"], d)
    c_rc, c_out = run_tool(CORRAL_BIN, ["start", "-c", "alpha=2", "-t", "5"], d)
    assert h_rc == c_rc == 3, (h_out, c_out)
    h_lines, c_lines = normalise(h_out), normalise(c_out)
    # deliberate difference: a child stopped by SIGTERM is reported as
    # rc=-15 by honcho (Popen.returncode) and rc=143 (128+15) by corral
    assert sum("stopped (rc=-15)" in x for x in h_lines) == 2, h_out
    h_lines = [x.replace("(rc=-15)", "(rc=143)") for x in h_lines]
    # same lines, same padding (width of "beta_long_name.1"); the order of
    # lines from different processes is not deterministic in honcho (each
    # instance is read by its own Python process), so compare as multisets
    assert Counter(h_lines) == Counter(c_lines), (h_out, c_out)
    assert "system           | beta_long_name.1 stopped (rc=3)" in c_lines
    assert "alpha.2          | alpha says hi 5001 alpha.2" in c_lines
    assert "beta_long_name.1 | beta 5100 beta_long_name.1" in c_lines
    # and per process, the same order
    for name in ("alpha.1", "alpha.2", "beta_long_name.1"):
        assert [x for x in h_lines if x.startswith(name + " ")] == [
            x for x in c_lines if x.startswith(name + " ")
        ]
    # in both, the stop of the first exiter precedes the SIGTERMs it causes
    for lines in (h_lines, c_lines):
        stop = lines.index("system           | beta_long_name.1 stopped (rc=3)")
        sends = [i for i, x in enumerate(lines) if "sending SIGTERM" in x]
        assert len(sends) == 2 and min(sends) > stop, lines


def test_no_prefix_output_matches_honcho(app_dir):
    d = app_dir(Procfile=E2E)
    h_rc, h_out = run_tool(HONCHO, ["start", "--no-prefix"], d)
    c_rc, c_out = run_tool(CORRAL_BIN, ["start", "--no-prefix"], d)
    assert h_rc == c_rc == 3
    norm = lambda out: Counter(  # noqa: E731
        re.sub(r"pid[= ]\d+", "pid N", x).replace("(rc=-15)", "(rc=143)") for x in out.splitlines()
    )
    assert norm(h_out) == norm(c_out), (h_out, c_out)


def test_check_message_matches_honcho(app_dir):
    d = app_dir(Procfile="web: a\nworker: b\n")
    h = subprocess.run(
        [HONCHO, "check"], cwd=d, env=base_env(), capture_output=True, text=True, timeout=30
    )
    c = run_corral("check", cwd=d)
    assert h.returncode == c.rc == 0
    assert "Valid procfile detected (web, worker)" in h.stderr
    assert "Valid procfile detected (web, worker)" in c.err


# each instance reports its PORT, then waits until `n` have reported, so
# that the first exit cannot stop the others before they print
REPORT = (
    'echo "PORT=$PORT"; touch "$HONCHO_PROCESS_NAME.ready"; '
    'while [ $(ls | grep -c "[.]ready$") -lt {n} ]; do sleep 0.02; done'
)


def ports_procfile(n: int) -> str:
    return f"web: {REPORT.format(n=n)}\nworker: {REPORT.format(n=n)}\n"


def ports_of(out: str) -> list[int]:
    return sorted(int(p) for p in re.findall(r"PORT=(\d+)", out))


def test_port_option_beats_dotenv_port_unlike_honcho(app_dir):
    d = app_dir(Procfile=ports_procfile(2), **{".env": "PORT=9000\n"})
    _, h_out = run_tool(HONCHO, ["start", "-p", "8000"], d)
    _, c_out = run_tool(CORRAL_BIN, ["start", "-p", "8000"], d)
    assert ports_of(h_out) == [9000, 9100], h_out  # honcho's bug
    assert ports_of(c_out) == [8000, 8100], c_out


def test_dotenv_port_without_option_agrees(app_dir):
    d = app_dir(Procfile=ports_procfile(2), **{".env": "PORT=9000\n"})
    _, h_out = run_tool(HONCHO, ["start"], d)
    _, c_out = run_tool(CORRAL_BIN, ["start"], d)
    assert ports_of(h_out) == ports_of(c_out) == [9000, 9100]


def test_port_stable_under_selection_unlike_honcho(app_dir):
    d = app_dir(Procfile=ports_procfile(1))
    _, h_out = run_tool(HONCHO, ["start", "worker"], d)
    _, c_out = run_tool(CORRAL_BIN, ["start", "worker"], d)
    assert ports_of(h_out) == [5000], h_out
    assert ports_of(c_out) == [5100], c_out


def test_bad_line_honcho_skips_corral_rejects_end_to_end(app_dir):
    d = app_dir(Procfile="web: echo ok\nweb.dot: echo skipped by honcho\n")
    h = subprocess.run(
        [HONCHO, "check"], cwd=d, env=base_env(), capture_output=True, text=True, timeout=30
    )
    assert h.returncode == 0 and "Valid procfile detected (web)" in h.stderr
    assert_one_error(run_corral("check", cwd=d), "Procfile:2: ")


def test_missing_env_file_honcho_ignores_corral_rejects(app_dir):
    d = app_dir(Procfile="web: true\n")
    h_rc, _ = run_tool(HONCHO, ["start", "-e", "missing.env"], d)
    assert h_rc == 0
    assert_one_error(run_corral("start", "-e", "missing.env", cwd=d), "missing.env")


def test_signal_exit_code_differs_from_honcho(app_dir):
    d = app_dir(Procfile="a: kill -9 $$\n")
    h_rc, _ = run_tool(HONCHO, ["start"], d)
    c_rc, _ = run_tool(CORRAL_BIN, ["start"], d)
    assert h_rc == 256 - 9  # honcho: sys.exit(-9)
    assert c_rc == 128 + 9
