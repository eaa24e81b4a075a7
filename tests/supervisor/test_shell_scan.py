"""Unit tests: which Procfile commands run as `/bin/sh -c 'exec CMD'`.

A simple command gets `exec` (the app replaces the shell and is corral's
child); anything compound, or that the scanner cannot be sure of, runs as
written.  A property test checks that adding `exec` changes nothing a
simple command does: same output, same exit status.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.specs import ProcessSpec


def args_of(command: str) -> list[str]:
    return ProcessSpec(name="web.1", kind="web", command=command).args()


SIMPLE = [
    "python3 app.py",
    "python3 -c \"print('hi')\"",
    "./bin/web --port $PORT",
    "bundle exec puma -C config/puma.rb",
    "gunicorn app:app >log 2>&1",
    "'my app' 'arg with spaces'",
    'node "server.js"',
    "sleep 1 # a comment",
    "python3 -m http.server $PORT",
]

COMPOUND = [
    "cd . && python3 app.py",
    "true | python3 app.py",
    "FOO=1 python3 app.py",
    "a; b",
    "sleep 300 &",
    "(cd x; y)",
    "{ a; }",
    "echo $(date)",
    "echo `date`",
    'echo "$(date)"',
    "cd /tmp",
    "export A=1",
    ". ./env.sh",
    "exec python3 app.py",
    "if true; then x; fi",
    "while true; do x; done",
    ">log python3 app.py",
    "python3 app.py \\\n  --flag",
    "echo 'unterminated",
    "a\nb",
    "a || b",
    "# only a comment",
]


@pytest.mark.parametrize("command", SIMPLE)
def test_simple_command_runs_with_exec(command):
    assert args_of(command) == ["/bin/sh", "-c", f"exec {command}"]


@pytest.mark.parametrize("command", COMPOUND)
def test_compound_command_runs_as_written(command):
    assert args_of(command) == ["/bin/sh", "-c", command]


def test_explicit_argv_is_used_as_it_is():
    spec = ProcessSpec(name="x.1", kind="x", command="ignored", argv=("prog", "a b", "$c"))
    assert spec.args() == ["prog", "a b", "$c"]


# -- exec changes nothing a simple command does --------------------------------

# A format that dash's builtin printf and coreutils' (which `exec printf`
# runs) treat alike: no `%` or `\` of its own, no `-` (dash takes a leading
# one for an option), and at least one `%s` (without a conversion, coreutils
# warns about the arguments it ignores).
_PLAIN = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs",), exclude_characters="\0%\\-", max_codepoint=0x2FF
    ),
    max_size=8,
)
_FORMAT = st.lists(st.one_of(_PLAIN, st.sampled_from(["%s", "\\n", "%%", "\\t"])), max_size=6).map(
    lambda pieces: "".join(pieces) if "%s" in pieces else "".join(pieces) + "%s"
)
_ARG = st.text(
    alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0"),
    max_size=12,
)
_BARE = st.text(alphabet="abcXYZ019_./:,+=-@", min_size=1, max_size=8)
_DOUBLE_SAFE = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs",), exclude_characters='\0"\\$`', max_codepoint=0x2FF
    ),
    max_size=8,
)


def _word(draw: st.DrawFn, text: str) -> str:
    """`text` as one shell word: single-quoted (shlex), or double-quoted when it can be."""
    if draw(st.booleans()) or any(c in text for c in '"\\$`'):
        return shlex.quote(text)
    return f'"{text}"'


@st.composite
def printf_commands(draw: st.DrawFn) -> str:
    words = ["printf", _word(draw, draw(_FORMAT))]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["quoted", "bare", "double"]))
        if kind == "quoted":
            words.append(_word(draw, draw(_ARG)))
        elif kind == "bare":
            words.append(draw(_BARE))
        else:
            words.append(f'"{draw(_DOUBLE_SAFE)}"')
    if draw(st.booleans()):
        words.append(draw(st.sampled_from(["2>&1", ">/dev/stdout", "2>/dev/null"])))
    return " ".join(words)


def _run(argv: list[str]) -> tuple[int, bytes]:
    proc = subprocess.run(argv, capture_output=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    return proc.returncode, proc.stdout


@settings(max_examples=60, deadline=None)
@given(printf_commands())
def test_exec_prefix_keeps_what_a_simple_command_prints(command):
    argv = args_of(command)
    assert argv == ["/bin/sh", "-c", f"exec {command}"], command
    assert _run(argv) == _run(["/bin/sh", "-c", command])
