from __future__ import annotations

from pathlib import Path

import pytest

from corral.errors import CorralError, ProcfileError
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
