"""Procfile rules, observed through `corral start` and `corral check`."""

from __future__ import annotations

import pytest

from tests.support import assert_nothing_left, assert_one_error, run_corral, texts


def test_comments_blank_lines_and_crlf(app_dir):
    d = app_dir()
    (d / "Procfile").write_bytes(
        b"# a comment\r\n\r\n   \r\nweb: echo one\r\n  # indented comment\r\n"
        b"worker: echo two\r\n\r\n"
    )
    r = run_corral("check", cwd=d)
    assert r.rc == 0, r
    assert "Valid procfile detected (web, worker)" in r.err
    r = run_corral("start", "-c", "worker=0", "--no-timestamp", cwd=d)
    assert r.rc == 0, r
    # no stray \r from the CRLF line ending reaches the command
    assert texts(r.out, "web.1", 6, timestamp=False) == ["one"], repr(r.out)


def test_commands_run_through_bin_sh(app_dir):
    d = app_dir(Procfile='web: echo "shell=$0"; echo a && echo b | tr b B\n')
    r = run_corral("start", "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert r.lines[1:4] == ["shell=/bin/sh", "a", "B"], r.out


def test_command_keeps_colons_and_hashes(app_dir):
    d = app_dir(Procfile="web:echo a:b  # comment for the shell\n")
    r = run_corral("start", "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert "a:b" in r.lines, r.out


def test_names_may_use_letters_digits_underscore_dash(app_dir):
    d = app_dir(Procfile="my-web_2: echo ok\nX-9: echo ok\n-_-: echo ok\n")
    r = run_corral("check", cwd=d)
    assert r.rc == 0, r
    assert "Valid procfile detected (my-web_2, X-9, -_-)" in r.err
    r = run_corral("start", "-t", "1", "-c", "X-9=0,-_-=0", cwd=d)
    assert r.rc == 0, r
    assert "my-web_2.1 | ok" in r.out


@pytest.mark.parametrize("command", ["check", "start"])
@pytest.mark.parametrize(
    "lines, lineno",
    [
        (["web: echo ok", "# fine", "this is not an entry"], 3),
        (["web: echo ok", "", "web.dot: echo dot"], 3),
        (["web.dot: x"], 1),
        (["wéb: x"], 1),
        (["web echo no colon"], 1),
        (["web: ok", ": no name"], 2),
        (["web: ok", "na me: x"], 2),
        (["web: ok", "worker:"], 2),
        (["web: ok", "worker:    "], 2),
    ],
)
def test_bad_line_is_an_error_naming_file_and_line(app_dir, command, lines, lineno):
    d = app_dir(Procfile="\n".join(lines) + "\n")
    r = run_corral(command, cwd=d)
    assert_one_error(r, f"corral: error: Procfile:{lineno}: ")


@pytest.mark.parametrize(
    "lines, lineno",
    [
        # honcho's regex is anchored at the line start and wants the colon
        # right after the name; it silently skips these.  The spec: "Unlike
        # honcho (which silently skips them), any other non-blank line is an
        # error" -- corral must not run a process honcho would never have run.
        (["web: echo ok", "  worker: echo indented"], 2),
        (["web: echo ok", "\tworker: echo tab-indented"], 2),
        (["web: echo ok", "worker : echo space before colon"], 2),
    ],
    ids=["indented", "tab-indented", "space-before-colon"],
)
def test_lines_honcho_skips_are_errors(app_dir, lines, lineno):
    import honcho.environ

    text = "\n".join(lines) + "\n"
    assert list(honcho.environ.parse_procfile(text).processes) == ["web"]  # honcho skips it
    d = app_dir(Procfile=text)
    assert_one_error(run_corral("check", cwd=d), f"Procfile:{lineno}: ")


def test_crlf_error_line_numbers(app_dir):
    d = app_dir()
    (d / "Procfile").write_bytes(b"# c\r\nweb: ok\r\n\r\nnope\r\n")
    assert_one_error(run_corral("check", cwd=d), "Procfile:4: ")


def test_duplicate_names_are_an_error(app_dir):
    d = app_dir(Procfile="web: a\nworker: b\nweb: c\n")
    line = assert_one_error(run_corral("start", cwd=d), "Procfile:3: ")
    assert "web" in line and "duplicate" in line.lower(), line
    assert_one_error(run_corral("check", cwd=d), "Procfile:3: ")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n\n# another\n"])
def test_empty_procfile_is_an_error(app_dir, content):
    d = app_dir(Procfile=content)
    assert_one_error(run_corral("start", cwd=d), "Procfile")
    assert_one_error(run_corral("check", cwd=d), "Procfile")


def test_missing_procfile_is_an_error(app_dir):
    d = app_dir()
    assert_one_error(run_corral("start", cwd=d), "Procfile")
    assert_one_error(run_corral("check", cwd=d), "Procfile")
    assert_one_error(run_corral("start", "-f", "Nope.proc", cwd=d), "Nope.proc")


def test_error_names_the_file_given_with_f_and_d(app_dir):
    d = app_dir(**{"app/Custom": "web: ok\nbad\n"})
    line = assert_one_error(run_corral("-d", "app", "-f", "Custom", "check", cwd=d))
    assert "Custom:2: " in line, line


# -- which Procfile -----------------------------------------------------------


def _procfiles(app_dir, **extra):
    return app_dir(
        **{
            "Procfile": "web: echo from-default\n",
            "Os.proc": "web: echo from-os-env\n",
            "Dot.proc": "web: echo from-dotenv\n",
            "Cli.proc": "web: echo from-cli\n",
        },
        **extra,
    )


def _which(r):
    assert r.rc == 0, r
    return [x for x in r.lines if x.startswith("from-")]


def test_procfile_from_os_environment(app_dir):
    d = _procfiles(app_dir)
    assert _which(run_corral("start", "--no-prefix", env={"PROCFILE": "Os.proc"}, cwd=d)) == [
        "from-os-env"
    ]


def test_procfile_from_dotenv_beats_os_environment(app_dir):
    d = _procfiles(app_dir, **{".env": "PROCFILE=Dot.proc\n"})
    assert _which(run_corral("start", "--no-prefix", cwd=d)) == ["from-dotenv"]
    r = run_corral("start", "--no-prefix", env={"PROCFILE": "Os.proc"}, cwd=d)
    assert _which(r) == ["from-dotenv"]


def test_procfile_option_beats_environment_and_dotenv(app_dir):
    d = _procfiles(app_dir, **{".env": "PROCFILE=Dot.proc\n"})
    r = run_corral("start", "-f", "Cli.proc", "--no-prefix", env={"PROCFILE": "Os.proc"}, cwd=d)
    assert _which(r) == ["from-cli"]


def test_default_procfile(app_dir):
    d = _procfiles(app_dir)
    assert _which(run_corral("start", "--no-prefix", cwd=d)) == ["from-default"]


# -- hostile input --------------------------------------------------------------


@pytest.mark.parametrize("command", ["check", "start"])
def test_nul_in_a_command_is_rejected_before_anything_starts(app_dir, mark, command):
    d = app_dir()
    (d / "Procfile").write_bytes(b"a: exec sleep 1234\nb: echo a\0b\n")
    line = assert_one_error(run_corral(command, cwd=d), "corral: error: Procfile:2: ", "NUL")
    assert "process 'b'" in line, line
    assert_nothing_left(mark)


def test_long_line_is_not_echoed_in_full(app_dir):
    d = app_dir(Procfile="web: echo ok\n" + "x" * 200_000 + "\n")
    line = assert_one_error(run_corral("check", cwd=d), "corral: error: Procfile:2: ")
    assert len(line) < 200, line[:300]


def test_backslash_continuation_is_explained(app_dir):
    d = app_dir(Procfile="release: ./migrate\nweb: gunicorn app:app \\\n    --workers 4\n")
    line = assert_one_error(run_corral("check", cwd=d), "corral: error: Procfile:2: ")
    assert "'web'" in line and "continuation" in line, line
