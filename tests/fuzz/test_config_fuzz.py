"""Config fuzzer: hostile Procfile, `.env`, `corral.toml` and `pyproject.toml`
files (tests/fuzz/generate.py) through the installed `corral check` and a
short `corral start`.

For every case, whatever the input:

* no Python traceback, on stdout or stderr;
* an error is exactly one line, `corral: error: ...` (at most MAX_ERROR
  characters), with exit code 1 (bad input) or 2 (bad command line), and
  nothing started;
* `check` says `Valid procfile detected (...)` on success, nothing else;
* `start` exits with a documented code: 0 or a child's code when the first
  process exits by itself, 143 when we stop it with SIGTERM;
* no value from a `.env` secret is printed by corral;
* nothing is left running: every process of a case carries its own
  `TEST_MARK`, and `tests.support.assert_nothing_left` must hold after it.

`start` runs on every case `check` accepts, and on one in START_REFUSED of
the cases it refuses (it reads the same files; corral's start-up is the cost).
Cases run in a small thread pool (each thread waits on its own corral): about
40 s for 240 cases on two cores.  FUZZ_SEED and
FUZZ_CASES change the seed and the number of cases; a failure prints the seed
and index that rebuild its case (`generate.make_case(seed, index)`).

Findings in files this suite does not own are not hidden in the random run:
they have their own tests at the end, marked `xfail(strict=True)` with their
reproduction, and the generator leaves those inputs out (`KNOWN`) until they
are fixed (an XPASS then says to remove the exclusion).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.fuzz.generate import Case, make_case
from tests.support import (
    CORRAL,
    MARK_VAR,
    Result,
    assert_nothing_left,
    assert_one_error,
    base_env,
    kill_marked,
    run_corral,
)

SEED = int(os.environ.get("FUZZ_SEED", "20240917"))
CASES = int(os.environ.get("FUZZ_CASES", "240"))
WORKERS = 4
START_REFUSED = 4
MAX_ERROR = 1000  # characters in the one error line: input is quoted in excerpts
START_CODES = {0, 1, 2, 3, 124, 126, 127, 143}  # see the module docstring
STOP_AFTER = 0.3  # seconds of running after corral's first output, then SIGTERM
FIRST_OUTPUT_WITHIN = 8.0  # no output by then: SIGTERM anyway (a probe may be waiting)
STOPS_WITHIN = 20.0  # after SIGTERM; `-t 1` bounds the grace, config may ask for more


def write_case(case: Case, root: Path) -> Path:
    app = root / "app"
    app.mkdir(parents=True)
    for name, data in case.files.items():
        (app / name).write_bytes(data)
    return app


def run(app: Path, args: list[str], mark: str, *, stop: bool) -> tuple[Result, bool]:
    """Run corral ARGS in `app`; with `stop`, SIGTERM it shortly after its first
    output if it is still running.  Returns the result and whether it was signalled."""
    assert CORRAL
    out_path, err_path = app.parent / "stdout", app.parent / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [CORRAL, *args],
            cwd=app,
            env=base_env({MARK_VAR: mark}),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    signalled = False
    try:
        if stop:
            deadline = time.monotonic() + FIRST_OUTPUT_WITHIN
            while proc.poll() is None and time.monotonic() < deadline:
                if out_path.stat().st_size or err_path.stat().st_size:
                    break
                time.sleep(0.02)
            try:
                proc.wait(timeout=STOP_AFTER)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGTERM)
                signalled = True
        proc.wait(timeout=STOPS_WITHIN)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"corral {' '.join(args)} still running {STOPS_WITHIN}s after SIGTERM"
        ) from None
    text = out_path.read_bytes().decode("utf-8", "replace")
    errors = err_path.read_bytes().decode("utf-8", "replace")
    return Result(proc.returncode, text, errors), signalled


def error_problems(r: Result) -> list[str]:
    """What is wrong with how corral reported a failure (nothing if it is right)."""
    lines = r.err.splitlines()
    problems = []
    if r.rc not in (1, 2):
        problems.append(f"an error exits 1 or 2, not {r.rc}")
    if len(lines) != 1 or not r.err.endswith("\n"):
        problems.append(f"an error is exactly one line, got {len(lines)}")
    elif not lines[0].startswith("corral: error: "):
        problems.append("an error line starts with 'corral: error: '")
    elif len(lines[0]) > MAX_ERROR:
        problems.append(f"an error line of {len(lines[0])} characters")
    if "started (pid=" in r.out:
        problems.append("processes started before the error")
    return problems


def check_problems(r: Result) -> list[str]:
    if r.rc == 0:
        if r.out or not (r.err.startswith("Valid procfile detected (") and r.err.count("\n") == 1):
            return ["check succeeded without exactly its one 'Valid procfile' line"]
        return []
    return error_problems(r)


def start_problems(r: Result, signalled: bool) -> list[str]:
    if r.err and ((r.rc in (1, 2) and "started (pid=" not in r.out) or "error" in r.err):
        return error_problems(r)
    problems = []
    if r.rc not in START_CODES:
        problems.append(f"start exited {r.rc}, not one of {sorted(START_CODES)}")
    if r.rc in (1, 2) and "started (pid=" not in r.out:
        problems.append("start failed without an error line")
    if any(not line.startswith("corral: ") for line in r.err.splitlines()):
        problems.append("stderr holds lines that are not corral's")
    return problems


def common_problems(r: Result, case: Case) -> list[str]:
    problems = []
    if "Traceback" in r.err or "Traceback" in r.out:
        problems.append("a Python traceback")
    for value in case.secrets:
        if value in r.err or value in r.out:
            problems.append("a .env secret was printed")
    return problems


# Inputs with a known finding in a file this suite does not own: left out of
# the random run, each with an xfail(strict=True) test at the end of the module.
# When that test XPASSes, delete its entry here.
KNOWN: list[tuple[Callable[[Case], bool], str]] = [
    (lambda case: "toml-deep" in case.kind, "test_deeply_nested_toml_is_one_error"),
]


def known(case: Case) -> str | None:
    for matches, reason in KNOWN:
        if matches(case):
            return reason
    return None


def fuzz_one(case: Case, root: Path) -> list[str]:
    """Run one case; return a description of every problem (none: it passed)."""
    app = write_case(case, root)
    mark = uuid.uuid4().hex
    found: list[str] = []
    try:
        r, _ = run(app, ["check"], mark, stop=False)
        problems = common_problems(r, case) + check_problems(r)
        if problems:
            found.append(f"check: {problems}: rc={r.rc} err={r.err[:500]!r}")
        # `start` reads the same files: when `check` refused them, `start` is
        # run on one case in START_REFUSED only (corral's start-up is the cost)
        if r.rc == 0 or case.index % START_REFUSED == 0:
            r, signalled = run(app, ["start", "-t", "1", *case.start_args], mark, stop=True)
            problems = common_problems(r, case) + start_problems(r, signalled)
            if problems:
                found.append(
                    f"start: {problems}: rc={r.rc} signalled={signalled} "
                    f"err={r.err[:500]!r} out={r.out[:500]!r}"
                )
            try:
                assert_nothing_left(mark, timeout=3)
            except AssertionError as exc:
                found.append(f"start: {exc}")
    except AssertionError as exc:
        found.append(str(exc))
    finally:
        kill_marked(mark)
    return [f"{case.describe()}\n    {p}" for p in found]


def test_generator_is_deterministic() -> None:
    for index in (0, 7, 99):
        a, b = make_case(SEED, index), make_case(SEED, index)
        assert (a.kind, a.files, a.start_args, a.secrets) == (
            b.kind,
            b.files,
            b.start_args,
            b.secrets,
        )
    kinds = {make_case(SEED, i).kind.split("-")[0] for i in range(CASES)}
    assert {"procfile", "env", "toml", "pyproject"} <= kinds


def test_hostile_configs(tmp_path: Path) -> None:
    cases = [make_case(SEED, i) for i in range(CASES)]
    cases = [c for c in cases if known(c) is None]
    assert len(cases) > CASES * 0.9, "KNOWN leaves out too much"
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(lambda c: fuzz_one(c, tmp_path / str(c.index)), cases))
    failures = [f for found in results for f in found]
    assert not failures, f"{len(failures)} problems in {len(cases)} cases:\n" + "\n".join(
        failures[:15]
    )


# -- findings in files this suite does not own (lifecycle.py) ---------------------


@pytest.mark.xfail(
    strict=True,
    reason="lifecycle.load_file lets tomllib's RecursionError through: a traceback",
)
@pytest.mark.parametrize("command", ["check", "start"])
@pytest.mark.parametrize(
    "content",
    [b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n", b"x = " + b"{a=" * 3000 + b"1" + b"}" * 3000],
    ids=["arrays", "inline-tables"],
)
def test_deeply_nested_toml_is_one_error(app_dir, mark, command, content):
    d = app_dir(Procfile="web: exec sleep 30\n")
    (d / "corral.toml").write_bytes(content)
    assert_one_error(run_corral(command, cwd=d), "corral: error: corral.toml")
    assert_nothing_left(mark)


@pytest.mark.xfail(
    strict=True,
    reason="lifecycle.load_file: invalid UTF-8 in corral.toml is reported without its line",
)
def test_invalid_utf8_in_corral_toml_names_the_line(app_dir):
    d = app_dir(Procfile="web: exec sleep 30\n")
    (d / "corral.toml").write_bytes(b"[processes.web]\noneshot = false\n# caf\xe9\n")
    assert_one_error(run_corral("check", cwd=d), "corral: error: corral.toml:3: ")


def test_sigterm_while_exiting_is_not_fatal(app_dir, mark):
    # `docker stop` racing the app's own exit: corral must still exit with a code
    d = app_dir(Procfile="web: exec sleep 30\nclock: sleep 0.3\n")
    codes = []
    for _ in range(3):
        assert CORRAL
        proc = subprocess.Popen(
            [CORRAL, "start", "-t", "1"],
            cwd=d,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        # corral's handlers are in place once it reports a start (the pipe
        # stays open: a closed stdout would stop corral another way)
        while b"started (pid=" not in proc.stdout.readline():
            pass
        while proc.poll() is None:  # then SIGTERM every 2 ms until it exits
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                break
            time.sleep(0.002)
        codes.append(proc.wait(timeout=20))
        proc.stdout.close()
    assert_nothing_left(mark)
    assert all(code >= 0 for code in codes), codes
