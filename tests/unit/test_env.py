from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from dotenv.parser import parse_stream
from dotenv.variables import parse_variables
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.env import MAX_VALUE_BYTES, load, parse
from corral.errors import CorralError, EnvFileError


def test_dotenv_dialect() -> None:
    text = (
        "PLAIN=value\n"
        "export EXPORTED=yes\n"
        "SPACED=two words\n"
        "EMPTY=\n"
        'DQ="x \\"quoted\\""\n'
        "SQ='single $HOME'\n"
        'MULTI="line1\nline2"\n'
        "EQ=a=b=c\n"
        "BARE\n"
        "# comment\n"
    )
    values = parse(text, ".env", {})
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "yes",
        "SPACED": "two words",
        "EMPTY": "",
        "DQ": 'x "quoted"',
        "SQ": "single $HOME",
        "MULTI": "line1\nline2",
        "EQ": "a=b=c",
    }


def test_interpolation_sees_context_and_earlier_keys() -> None:
    values = parse("A=${BASE}/a\nB=${A}/b\nC=${MISSING:-dflt}\n", ".env", {"BASE": "/srv"})
    assert values == {"A": "/srv/a", "B": "/srv/a/b", "C": "dflt"}


@pytest.mark.parametrize(
    ("text", "lineno"),
    [("OK=1\nNOT VALID LINE\n", 2), ("A=1\n\n\n\nbad line\n", 5), ('M="a\nb"\n\nbad line\n', 4)],
)
def test_unparsable_line_names_file_and_line(text: str, lineno: int) -> None:
    with pytest.raises(EnvFileError) as info:
        parse(text, "prod.env", {})
    assert str(info.value).startswith(f"prod.env:{lineno}: expected KEY=VALUE")


def test_load_layers_files_later_wins(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("X=1\nY=${HOME_DIR}\n")
    (tmp_path / "b.env").write_text("X=2\nZ=${X}3\n")
    values = load(tmp_path, ["a.env", "b.env"], explicit=True, base={"HOME_DIR": "/h"})
    assert values == {"X": "2", "Y": "/h", "Z": "23"}


def test_default_env_may_be_absent_but_explicit_must_exist(tmp_path: Path) -> None:
    assert load(tmp_path, [".env"], explicit=False, base={}) == {}
    with pytest.raises(CorralError, match=r"missing\.env: env file not found"):
        load(tmp_path, ["missing.env"], explicit=True, base={})


# -- hostile input ---------------------------------------------------------------

SECRET = "sk_live_0123456789abcdef"


@pytest.mark.parametrize(
    ("text", "lineno", "fragments"),
    [
        (f'A=1\nAPI_KEY="{SECRET}\n', 2, ["API_KEY", "double quote is never closed", "column 9"]),
        (f"A=1\nAPI_KEY='{SECRET}\n", 2, ["API_KEY", "single quote is never closed", "column 9"]),
        (f'API_KEY="{SECRET}"x{SECRET}\n', 1, ["API_KEY", "after the closing quote", "column 35"]),
        (f'export  API_KEY = "{SECRET}\nB=2\n', 1, ["API_KEY", "column 19"]),
        (f"A=1\n\n{SECRET} {SECRET}\n", 3, ["expected KEY=VALUE", "column 26"]),
        (f"A=1\r\nB=2\r\n{SECRET} x\r\n", 3, ["expected KEY=VALUE", "column 26"]),
        (f'M="a\nb"\n  {SECRET} x\n', 3, ["expected KEY=VALUE", "column 28"]),
    ],
    ids=["unclosed-double", "unclosed-single", "after-quote", "export", "words", "crlf", "multi"],
)
def test_syntax_errors_name_line_column_and_key_but_never_the_value(
    text: str, lineno: int, fragments: list[str]
) -> None:
    with pytest.raises(EnvFileError) as info:
        parse(text, ".env", {})
    message = str(info.value)
    assert message.startswith(f".env:{lineno}: "), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert SECRET not in message and "sk_live" not in message, message


@pytest.mark.parametrize(
    ("text", "lineno", "fragment"),
    [
        ("A=1\n'a=b'=1\n", 2, "'a=b': not a valid variable name (contains '=')"),
        ("A\0B=1\n", 1, "'A\\x00B': not a valid variable name (contains a NUL byte)"),
        ("A=1\n'a b'=1\n", 2, "'a b': not a valid variable name (contains a blank"),
        ("A\x1bB=1\n", 1, "not a valid variable name (contains a blank or a control character)"),
        ("A=1\n=1\n", 2, "empty variable name"),
        ("A=1\nexport =1\n", 2, "empty variable name"),
        ("A=1\n''=1\n", 2, "a quoted key must be closed and not empty"),
        (f"A=1\nTOKEN={SECRET}\0x\n", 2, "'TOKEN': the value contains a NUL byte (column 31)"),
        (f'A=1\nTOKEN="{SECRET}\n\0"\n', 3, "'TOKEN': the value contains a NUL byte (column 1)"),
        (f"{SECRET}\0\n", 1, "expected KEY=VALUE"),
    ],
)
def test_names_and_values_no_process_could_receive(text: str, lineno: int, fragment: str) -> None:
    with pytest.raises(EnvFileError) as info:
        parse(text, ".env", {})
    message = str(info.value)
    assert message.startswith(f".env:{lineno}: "), message
    assert fragment in message, message
    assert SECRET not in message, message


def test_load_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"A=1\nB=2\nC=\xff\n")
    with pytest.raises(EnvFileError, match=r"^\.env:3: not valid UTF-8$"):
        load(tmp_path, [".env"], explicit=False, base={})


def doubling(lines: int) -> str:
    """Each value references the previous one twice: 2**lines characters."""
    return "V0=abcdefgh\n" + "".join(f"V{i}=${{V{i - 1}}}${{V{i - 1}}}\n" for i in range(1, lines))


def test_exponential_expansion_is_refused_before_it_is_built() -> None:
    text = doubling(40)  # 8 * 2**39 characters if built
    assert len(text) < 700
    with pytest.raises(EnvFileError) as info:
        parse(text, ".env", {})
    message = str(info.value)
    # 8 * 2**14 = 128 KiB: V14 is the first value over the limit
    assert message.startswith(".env:15: 'V14': the value is over 128 KiB"), message


def test_values_up_to_the_limit_are_fine() -> None:
    values = parse(doubling(13), ".env", {})  # V12: 8 * 2**12 = 32 KiB
    assert len(values["V12"]) == 8 * 2**12
    key = "K"
    exact = MAX_VALUE_BYTES - len(key) - 2  # `K=` + value + NUL
    assert len(parse(f"{key}={'x' * exact}\n", ".env", {})[key]) == exact
    with pytest.raises(EnvFileError, match="'K': the value is over 128 KiB"):
        parse(f"{key}={'x' * (exact + 1)}\n", ".env", {})
    with pytest.raises(EnvFileError, match="over 128 KiB"):  # bytes, not characters
        parse(f"{key}={'é' * (exact // 2 + 1)}\n", ".env", {})


def test_many_references_to_a_big_value_are_bounded_in_total() -> None:
    big = "x" * 100_000
    text = f"BIG={big}\n" + "".join(f"K{i}=${{BIG}}\n" for i in range(100))
    with pytest.raises(
        EnvFileError, match=r"^\.env:21: 'K19': the \.env values add up to over 2 MiB"
    ):
        parse(text, ".env", {})


def test_total_counts_earlier_files_but_not_what_is_replaced(tmp_path: Path) -> None:
    chunk = "x" * 100_000
    (tmp_path / "a.env").write_text("".join(f"A{i}={chunk}\n" for i in range(15)))
    (tmp_path / "b.env").write_text("".join(f"A{i}=short\n" for i in range(15)) + "B=${A0}\n")
    values = load(tmp_path, ["a.env", "b.env"], explicit=True, base={})
    assert values["A0"] == values["B"] == "short"
    (tmp_path / "c.env").write_text("".join(f"C{i}={chunk}\n" for i in range(10)))
    with pytest.raises(EnvFileError, match=r"^c\.env:6: 'C5': the \.env values add up"):
        load(tmp_path, ["a.env", "c.env"], explicit=True, base={})


def test_long_blank_run_in_a_value_is_linear() -> None:
    # python-dotenv's inline-comment regex takes minutes on this line
    values = parse("A=x" + " " * 100_000 + "y # comment\n", ".env", {})
    assert values == {"A": "x" + " " * 100_000 + "y"}


def test_long_key_is_not_echoed_in_full() -> None:
    with pytest.raises(EnvFileError) as info:
        parse("'" + "k=" * 50_000 + "'=1\n", ".env", {})
    assert len(str(info.value)) < 200


# -- the dialect: python-dotenv as the oracle --------------------------------------

ENV_PIECES = st.sampled_from(
    [
        "A", "B", "export ", "export", "=", "'", '"', "\\", "#", " ", "\t", "\n", "\r", "\r\n",
        "${A}", "${B:-d}", "${", "}", "x", "\\n", "\\a", "\\v", "\\'", '\\"',
        "\x0b", "\xa0", "\u2028", "é",
    ]
)  # fmt: skip
JUNK = st.lists(ENV_PIECES, max_size=12).map("".join)
BLANK = st.sampled_from(["", " ", "\t", "\xa0"])


@st.composite
def env_lines(draw: st.DrawFn) -> str:
    """Mostly `[export ]KEY = VALUE [# comment]` with a quoted or plain value, some junk."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JUNK)
    key = draw(st.sampled_from(["A", "B", "A_1", "'A'", "'x y'"]))
    value = draw(JUNK)
    quote = draw(st.sampled_from(["", "'", '"']))
    if quote and draw(st.booleans()):
        value = value.replace(quote, "\\" + quote)  # mostly well-formed quoted values
    line = draw(st.sampled_from(["", "export "])) + key + draw(BLANK) + "=" + draw(BLANK)
    line += quote + value + quote + draw(st.sampled_from(["", " # c", "#c", " x"]))
    return line


ENV_TEXT = st.lists(env_lines(), max_size=6).flatmap(
    lambda lines: st.sampled_from(["\n", "\r\n", "\r"]).map(lambda eol: eol.join(lines))
)


def dotenv_oracle(text: str) -> tuple[dict[str, str], list[str], int | None]:
    """What python-dotenv makes of `text`: the values (bare keys set nothing,
    as in corral) and every key (bare ones too) up to the first error, and the
    line of that error (or None)."""
    values: dict[str, str] = {}
    keys: list[str] = []
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # the binding's text runs from its start to the end of the line
            # where parsing failed: that line is the one to report
            raw = re.sub(r"(\r\n|\n|\r)$", "", binding.original.string)
            return values, keys, binding.original.line + len(re.findall(r"\r\n|\n|\r", raw))
        if binding.key is not None:
            keys.append(binding.key)
            if binding.value is not None:
                atoms = parse_variables(binding.value)
                values[binding.key] = "".join(a.resolve(values) for a in atoms)
    return values, keys, None


def not_a_name(key: str) -> bool:
    return "=" in key or not key.isprintable() or any(c.isspace() for c in key)


@settings(max_examples=400, deadline=None)
@given(ENV_TEXT)
def test_parse_agrees_with_python_dotenv(text: str) -> None:
    expected, keys, error_line = dotenv_oracle(text)
    try:
        values = parse(text, ".env", {})
    except EnvFileError as exc:
        if error_line is None or any(map(not_a_name, keys)):
            # python-dotenv accepts keys no process can receive; corral refuses them
            assert any(map(not_a_name, keys)), (text, exc)
            assert "variable name" in exc.message or "expected KEY=VALUE" in exc.message, exc
        else:
            assert exc.lineno == error_line, (text, exc, error_line)
        return
    assert error_line is None, (text, error_line)
    assert values == expected
