"""Shared fixtures data for the export tests: a Procfile and hostile .env values.

`HOSTILE` is what `.env` (`ENV_TEXT`) parses to with corral's own parser;
`EXTRA` holds values a .env file cannot express for corral (python-dotenv
expands `${...}` everywhere and has no `\\x1b` escape), used where the tests
build the `ExportContext` directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from corral.export import ExportContext
from corral.procfile import parse

HOSTILE: dict[str, str] = {
    "SPACES": "bar baz  qux",
    "SINGLE": "it's",
    "DOUBLE": 'say "hi"',
    "BOTH": 'he said "it\'s" ok',
    "QUOTE_ENDS": "'quoted'",
    "PERCENT": "100% %n %% %(here)s %(ENV_HOME)s %i",
    "DOLLAR": "$HOME $PORT $$ $(echo no) `echo no` $",
    "AMP": "a&b&&c",
    "EQUALS": "a=b==c=",
    "HASH": "#not a comment # still not",
    "SEMI": "a ; b ;c",
    "NEWLINES": "line1\nline2\n\n",
    "LEADING_NL": "\nstarts with a newline",
    "BACKSLASH": "C:\\path\\ and \\n not a newline\\",
    "URL": "https://example.com/?a=1&b=2#frag",
    "EMPTY": "",
    "TRAILING": "trailing space ",
    "TAB": "a\tb\t",
    "LEADING": "  leading",
    "CONTROL": "cr\r bell\a vt\v",
    "UNICODE": "h\u00e9llo \u2713 \u2028 \U0001f600",
    "COMMA": "a,b,c",
    "GLOB": "* ? [a]",
    "PORT": "1234",
}

ENV_TEXT = """\
# a hostile .env: every value must reach the processes unchanged
SPACES=bar baz  qux
SINGLE="it's"
DOUBLE='say "hi"'
BOTH="he said \\"it's\\" ok"
QUOTE_ENDS="'quoted'"
PERCENT='100% %n %% %(here)s %(ENV_HOME)s %i'
DOLLAR='$HOME $PORT $$ $(echo no) `echo no` $'
AMP=a&b&&c
EQUALS=a=b==c=
HASH='#not a comment # still not'
SEMI='a ; b ;c'
NEWLINES="line1\\nline2\\n\\n"
LEADING_NL="\\nstarts with a newline"
BACKSLASH='C:\\\\path\\\\ and \\\\n not a newline\\\\'
URL='https://example.com/?a=1&b=2#frag'
EMPTY=
TRAILING="trailing space "
TAB="a\\tb\\t"
LEADING="  leading"
CONTROL="cr\\r bell\\a vt\\v"
UNICODE="h\u00e9llo \u2713 \u2028 \U0001f600"
COMMA=a,b,c
GLOB='* ? [a]'
PORT=1234
"""

EXTRA: dict[str, str] = {
    "BRACES": "${PORT} ${HOME:-x} $(PORT) $$(PORT)",
    "ESCAPE": "esc\x1b del\x7f",
}

PROCFILE = """\
web: python3 -m http.server $PORT
worker: python3 worker.py --queue "$QUEUE" --rate 100% ; echo 'not reached' # comment
foo_bar: echo "$SPACES" | tr a-z A-Z
clock: sleep 60
"""

APP = "my_app"
ROOT = Path("/srv/my_app")


def context(
    env: Mapping[str, str] | None = None,
    procfile: str = PROCFILE,
    **overrides: object,
) -> ExportContext:
    """The golden-file context; keyword arguments replace fields."""
    fields: dict[str, object] = {
        "app": APP,
        "entries": parse(procfile),
        "counts": {"web": 2, "clock": 0},
        "base_port": 5000,
        "env": dict(env if env is not None else {**HOSTILE, **EXTRA}),
        "env_files": [ROOT / ".env"],
        "app_root": ROOT,
        "log_dir": f"/var/log/{APP}",
        "user": APP,
        "shell": "/bin/sh",
        "timeout": 5.0,
        "template_dir": None,
    }
    fields.update(overrides)
    return ExportContext(**fields)  # type: ignore[arg-type]
