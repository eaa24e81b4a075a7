from __future__ import annotations

from pathlib import Path

import pytest

from corral.env import load, parse
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
    assert str(info.value).startswith(f"prod.env:{lineno}: cannot parse")


def test_load_layers_files_later_wins(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("X=1\nY=${HOME_DIR}\n")
    (tmp_path / "b.env").write_text("X=2\nZ=${X}3\n")
    values = load(tmp_path, ["a.env", "b.env"], explicit=True, base={"HOME_DIR": "/h"})
    assert values == {"X": "2", "Y": "/h", "Z": "23"}


def test_default_env_may_be_absent_but_explicit_must_exist(tmp_path: Path) -> None:
    assert load(tmp_path, [".env"], explicit=False, base={}) == {}
    with pytest.raises(CorralError, match=r"missing\.env: env file not found"):
        load(tmp_path, ["missing.env"], explicit=True, base={})
