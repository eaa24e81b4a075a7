from __future__ import annotations

import ast
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import CorralError, ProcfileError, excerpt
from corral.procfile import Entry, load, parse


def test_entries_in_order_with_comments_blank_lines_and_crlf() -> None:
    text = (
        "# the app\r\nweb: gunicorn app:app\r\n\r\n  # indented comment\nworker_2-x: celery -A x\n"
    )
    assert parse(text) == [
        Entry("web", "gunicorn app:app", 2),
        Entry("worker_2-x", "celery -A x", 5),
    ]


def test_command_is_verbatim_for_the_shell() -> None:
    [entry] = parse("web: echo 'a: b' # shell comment\n")
    assert entry.command == "echo 'a: b' # shell comment"


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("web :run", "no space allowed before ':' after 'web'"),
        ("  web: run", "entry 'web' must not be indented"),
        ("\tweb: run", "entry 'web' must not be indented"),
    ],
)
def test_lines_honcho_would_skip_are_errors(line: str, fragment: str) -> None:
    with pytest.raises(ProcfileError, match=fragment):
        parse(f"ok: x\n{line}\n")


@pytest.mark.parametrize(
    ("text", "lineno", "fragment"),
    [
        ("web: ok\nthis is not an entry\n", 2, 'expected "name: command"'),
        ("web.dot: x\n", 1, "invalid process name 'web.dot'"),
        ("web: a\n\nweb: b\n", 3, "duplicate process name 'web' (first on line 1)"),
        ("web:\n", 1, "has no command"),
        ("web:    \n", 1, "has no command"),
        (": x\n", 1, "invalid process name ''"),
    ],
)
def test_bad_lines_name_file_and_line(text: str, lineno: int, fragment: str) -> None:
    with pytest.raises(ProcfileError) as info:
        parse(text, "Procfile.dev")
    assert info.value.lineno == lineno
    assert str(info.value).startswith(f"Procfile.dev:{lineno}: ")
    assert fragment in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_procfile_is_an_error(text: str) -> None:
    with pytest.raises(CorralError, match="no processes defined"):
        parse(text, "Procfile")


def test_bom_is_ignored() -> None:
    assert parse("\ufeffweb: x")[0].name == "web"


def test_load_missing_and_invalid_utf8(tmp_path: Path) -> None:
    with pytest.raises(CorralError, match="no such file"):
        load(tmp_path / "Procfile", "Procfile")
    bad = tmp_path / "Procfile"
    bad.write_bytes(b"web: ok\nworker: \xff\n")
    with pytest.raises(ProcfileError, match=r"Procfile:2: not valid UTF-8"):
        load(bad, "Procfile")


# -- hostile input --------------------------------------------------------------


def test_nul_in_a_command_is_an_error_at_load() -> None:
    # /bin/sh -c cannot be given a NUL: it used to fail only at spawn time,
    # after other processes had started
    with pytest.raises(ProcfileError) as info:
        parse("a: exec sleep 1234\nb: echo a\0b\n", "Procfile")
    assert str(info.value).startswith("Procfile:2: ")
    assert "NUL" in str(info.value)


def test_nul_in_a_name_is_an_invalid_name() -> None:
    with pytest.raises(ProcfileError, match=r"Procfile:1: invalid process name 'w\\x00b'"):
        parse("w\0b: x\n", "Procfile")


@pytest.mark.parametrize(
    "line",
    [
        "x" * 200_000,  # not an entry
        "web.dot" + "x" * 200_000 + ": cmd",  # invalid name
        "  web" + "x" * 200_000 + ": cmd",  # indented
    ],
)
def test_long_lines_are_not_echoed_in_full(line: str) -> None:
    with pytest.raises(ProcfileError) as info:
        parse(f"ok: x\n{line}\n", "Procfile")
    message = str(info.value)
    assert message.startswith("Procfile:2: ")
    assert len(message) < 200, message[:300]
    assert "..." in message


def test_long_duplicate_name_is_not_echoed_in_full() -> None:
    name = "w" * 100_000
    with pytest.raises(ProcfileError, match="duplicate") as info:
        parse(f"{name}: a\n{name}: b\n", "Procfile")
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "text",
    [
        "web: gunicorn app:app \\\n    --workers 4\n",
        "web: gunicorn app:app \\\r\n\t--workers 4\r\n",
        "web: gunicorn app:app \\\n--workers 4\n",
        "web: gunicorn app:app \\\n    worker: not an entry either\n",
    ],
    ids=["indented", "crlf-tab", "not-indented", "indented-entry"],
)
def test_backslash_continuation_is_explained(text: str) -> None:
    with pytest.raises(ProcfileError) as info:
        parse(f"# app\n{text}", "Procfile")
    message = str(info.value)
    assert message.startswith("Procfile:2: "), message
    assert "continuation" in message and "one line" in message and "script" in message


def test_trailing_backslash_before_an_entry_is_kept_verbatim() -> None:
    # honcho runs such a line as is; only a following non-entry is an error
    assert [e.command for e in parse("web: echo a \\\nworker: b\n")] == ["echo a \\", "b"]


def test_messages_are_one_short_line_whatever_the_input() -> None:
    junk = "\x00\x1b[31m\u2028\x85\r" + "é" * 500
    for text in (junk, f"web: ok\n{junk}\n", f"{junk}: x\n", f"web: ok\nweb{junk}\n"):
        with pytest.raises(CorralError) as info:
            parse(text, "Procfile")
        message = str(info.value)
        assert message.isprintable() and len(message) < 200, repr(message)


# Procfile-ish text: entry-like pieces, separators, blanks, control characters.
PROCFILE_PIECES = st.sampled_from(
    ["web", "w-1", ":", ": ", " ", "\t", "\n", "\r\n", "#", "\\", "\0", "\x1b", "é", "\ufeff"]
)
PROCFILE_TEXT = st.lists(st.one_of(PROCFILE_PIECES, st.text(max_size=5)), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(PROCFILE_TEXT)
def test_any_text_gives_entries_or_one_short_line(text: str) -> None:
    try:
        entries = parse(text, "Procfile")
    except CorralError as exc:
        message = str(exc)
        assert message.startswith("Procfile"), message
        assert message.isprintable() and len(message) < 250, repr(message)
        return
    assert entries
    for entry in entries:
        assert NAME_RE_CHARS.issuperset(entry.name)
        assert "\0" not in entry.command and entry.command == entry.command.strip()


NAME_RE_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.integers(min_value=1, max_value=80))
def test_excerpt_is_one_bounded_line(text: str, limit: int) -> None:
    shown = excerpt(text, limit)
    assert shown.isprintable()
    assert len(shown) <= 10 * limit + 40  # repr writes a character in at most 10
    if len(text) <= limit:
        assert ast.literal_eval(shown) == text  # the whole text, exactly
    else:
        tail = f"... ({len(text)} characters)"
        assert shown.endswith(tail)
        assert ast.literal_eval(shown[: -len(tail)]) == text[:limit]
