"""The children's environment: OS env, `.env` files, PORT/PS/HONCHO_PROCESS_NAME."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from tests.support import (
    CORRAL,
    Result,
    assert_nothing_left,
    assert_one_error,
    base_env,
    run_corral,
)

SHOW = (
    "web: for k in A B C ONLY_OS ONLY_DOT PYTHONUNBUFFERED; do "
    'eval "v=\\${$k-unset}"; echo "$k=[$v]"; done\n'
)


def shown(d, *args, env=None) -> dict[str, str]:
    r = run_corral("start", "--no-prefix", *args, cwd=d, env=env)
    assert r.rc == 0, r
    values = {}
    for line in r.lines:
        key, sep, rest = line.partition("=[")
        if sep and rest.endswith("]"):
            values[key] = rest[:-1]
    return values


def test_dotenv_overlays_os_environment(app_dir):
    d = app_dir(Procfile=SHOW, **{".env": "A=dot\nONLY_DOT=yes\n"})
    v = shown(d, env={"A": "os", "ONLY_OS": "os-only"})
    assert v["A"] == "dot"
    assert v["ONLY_OS"] == "os-only"
    assert v["ONLY_DOT"] == "yes"


def test_env_files_in_order_later_wins(app_dir):
    d = app_dir(
        Procfile=SHOW,
        **{"one.env": "A=one\nB=one\nC=one\n", "two.env": "B=two\nC=two\n", "three.env": "C=3\n"},
    )
    v = shown(d, "-e", "one.env,two.env,three.env", env={"A": "os"})
    assert (v["A"], v["B"], v["C"]) == ("one", "two", "3")
    v = shown(d, "-e", "three.env,two.env,one.env")
    assert (v["A"], v["B"], v["C"]) == ("one", "one", "one")


def test_explicit_env_replaces_default_dotenv(app_dir):
    d = app_dir(Procfile=SHOW, **{".env": "A=default\nB=default\n", "x.env": "A=x\n"})
    v = shown(d, "-e", "x.env")
    assert v["A"] == "x" and v["B"] == "unset"


def test_default_dotenv_may_be_absent(app_dir):
    d = app_dir(Procfile=SHOW)
    v = shown(d)
    assert v["A"] == "unset"


@pytest.mark.parametrize("value", ["missing.env", ".env,missing.env", "missing.env,.env"])
def test_missing_explicit_env_file_is_an_error(app_dir, value):
    d = app_dir(Procfile=SHOW, **{".env": "A=1\n"})
    assert_one_error(run_corral("start", "-e", value, cwd=d), "missing.env")
    assert_one_error(run_corral("check", "-e", value, cwd=d), "missing.env")
    assert_one_error(run_corral("run", "-e", value, "true", cwd=d), "missing.env")


def test_explicit_default_name_must_exist_too(app_dir):
    d = app_dir(Procfile=SHOW)
    assert_one_error(run_corral("start", "-e", ".env", cwd=d), ".env")


def test_dotenv_syntax_export_quotes_multiline(app_dir):
    d = app_dir(
        Procfile=SHOW,
        **{
            ".env": "export A=exported\n"
            "B='single $HOME # not a comment'\n"
            'C="first line\nsecond line"\n'
            "ONLY_DOT=plain value  # a comment\n"
        },
    )
    r = run_corral("start", "--no-prefix", cwd=d)
    assert r.rc == 0, r
    assert "A=[exported]" in r.lines
    assert "B=[single $HOME # not a comment]" in r.lines
    # the multi-line value reaches the child with its newline
    assert "C=[first line" in r.lines and "second line]" in r.lines, r.out
    assert r.lines.index("second line]") == r.lines.index("C=[first line") + 1
    assert "ONLY_DOT=[plain value]" in r.lines, r.out


def test_empty_values(app_dir):
    d = app_dir(Procfile=SHOW, **{".env": "A=\nB=''\nexport C=\n"})
    v = shown(d, env={"A": "os", "B": "os", "C": "os"})
    assert (v["A"], v["B"], v["C"]) == ("", "", "")


@pytest.mark.parametrize(
    "content, lineno",
    [
        ("A=1\nthis is not an assignment\n", 2),
        ('A=1\nB="never closed\n', 2),
        ("A=1\nB=2\nC D=3\n", 3),
        ("# comment\nA=1\n\nbad line\n", 4),
        ("A=1\n\n\n\nbad line\n", 5),
        ('A="multi\nline"\n# c\n\nbad line\n', 5),
    ],
    ids=[
        "words",
        "unclosed-quote",
        "space-in-key",
        "after-blank",
        "after-blanks",
        "after-multiline",
    ],
)
def test_unparsable_dotenv_is_an_error_naming_file_and_line(app_dir, content, lineno):
    d = app_dir(Procfile=SHOW, **{".env": content, "other.env": content})
    for command in ("start", "check"):
        assert_one_error(run_corral(command, cwd=d), f"corral: error: .env:{lineno}: ")
    assert_one_error(run_corral("start", "-e", "other.env", cwd=d), f"other.env:{lineno}: ")
    assert_one_error(run_corral("run", "true", cwd=d), f".env:{lineno}: ")


def test_env_file_path_relative_to_app_root(app_dir):
    d = app_dir(**{"app/Procfile": SHOW, "app/x.env": "A=in-app\n"})
    v = shown(d, "-d", "app", "-e", "x.env")
    assert v["A"] == "in-app"


# -- PYTHONUNBUFFERED ---------------------------------------------------------


def test_pythonunbuffered_set_for_children(app_dir):
    d = app_dir(Procfile=SHOW)
    assert shown(d)["PYTHONUNBUFFERED"] == "1"


def test_pythonunbuffered_left_alone_when_user_sets_it(app_dir):
    d = app_dir(Procfile=SHOW)
    assert shown(d, env={"PYTHONUNBUFFERED": "0"})["PYTHONUNBUFFERED"] == "0"
    (d / ".env").write_text("PYTHONUNBUFFERED=from-dotenv\n")
    assert shown(d)["PYTHONUNBUFFERED"] == "from-dotenv"


def test_python_child_output_is_not_held_until_exit(live, app_dir):
    # with a pipe for stdout and no PYTHONUNBUFFERED, this line would only
    # appear when the child exits 30 s later
    d = app_dir(
        Procfile=f"py: {sys.executable} -c \"import time; print('hello from python'); "
        'time.sleep(30)"\n'
    )
    proc = live("start", "-t", "1", cwd=d)
    proc.wait_line("hello from python", timeout=10)


# -- hostile .env files ---------------------------------------------------------

SECRET = "sk_live_51HqLyjWDarjtT1zdp7dc"


@pytest.mark.parametrize(
    "content, lineno, fragments",
    [
        (f'A=1\nAPI_KEY="{SECRET}\n', 2, ["API_KEY", "never closed", "column 9"]),
        (f"A=1\nAPI_KEY='{SECRET}'{SECRET}\n", 2, ["API_KEY", "after the closing quote"]),
        (f"A=1\n\n{SECRET} {SECRET}\n", 3, ["expected KEY=VALUE", "column"]),
        (f"A=1\nAPI_KEY={SECRET}\0\n", 2, ["API_KEY", "NUL"]),
        (f"A=1\n'API=KEY'={SECRET}\n", 2, ["'API=KEY'", "not a valid variable name"]),
        (f"A=1\n={SECRET}\n", 2, ["empty variable name"]),
        (f"A\0B={SECRET}\n", 1, ["not a valid variable name", "NUL"]),
    ],
    ids=[
        "unclosed-quote",
        "after-quote",
        "no-equals",
        "nul-value",
        "equals-in-key",
        "empty",
        "nul",
    ],
)
def test_bad_dotenv_error_never_shows_a_value(app_dir, mark, content, lineno, fragments):
    d = app_dir(Procfile="web: exec sleep 1234\n")
    (d / ".env").write_bytes(content.encode())
    for args in (("check",), ("start",), ("run", "true")):
        r = run_corral(*args, cwd=d)
        line = assert_one_error(r, f"corral: error: .env:{lineno}: ", *fragments)
        assert "sk_live" not in line, line
    assert_nothing_left(mark)


def test_invalid_utf8_in_dotenv_names_the_line(app_dir):
    d = app_dir(Procfile=SHOW)
    (d / ".env").write_bytes(b"A=1\n# \xe9t\xe9\nB=2\n")
    assert_one_error(run_corral("check", cwd=d), "corral: error: .env:2: not valid UTF-8")


def test_exponential_expansion_is_refused_with_little_memory(app_dir):
    # each value references the previous one twice: 2**40 bytes if expanded
    d = app_dir(
        Procfile=SHOW,
        **{".env": "V0=x\n" + "".join(f"V{i}=${{V{i - 1}}}${{V{i - 1}}}\n" for i in range(1, 40))},
    )
    assert len((d / ".env").read_bytes()) < 700
    limit = 512 * 1024 * 1024  # address space: corral needs far less, the expansion far more

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run(
        [CORRAL, "check"], cwd=d, env=base_env(), capture_output=True, text=True,
        preexec_fn=cap, timeout=30,
    )  # fmt: skip
    r = Result(proc.returncode, proc.stdout, proc.stderr)
    assert_one_error(r, "corral: error: .env:18: 'V17': the value is over 128 KiB")
