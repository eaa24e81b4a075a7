"""Shared fixtures data for the export tests: a Procfile and hostile .env values.

`HOSTILE` is what `.env` (`ENV_TEXT`) parses to with corral's own parser;
`EXTRA` holds values a .env file cannot express for corral (python-dotenv
expands `${...}` everywhere and has no `\\x1b` escape), used where the tests
build the `ExportContext` directly.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from corral import lifecycle
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


# -- the lifecycle scenario: every setting of corral.toml ---------------------

LIFECYCLE_PROCFILE = """\
release: python3 manage.py migrate --noinput
db: postgres -D /var/lib/postgresql/data -p $PORT
migrate: cd db && ./load-fixtures.sh "$DATABASE_URL"
cache: redis-server --port $PORT
web: gunicorn app:app --bind 0.0.0.0:$PORT
worker: FOO=1 celery -A app worker --concurrency 2
clock: python3 clock.py >>clock.log 2>&1
"""

LIFECYCLE_TOML = """\
[release]
timeout = 300

[processes.release]
after = ["db"]                          # the migrations need the database

[processes.db]
ready = { probe = "cmd:pg_isready -q -p $PORT", interval = 1, timeout = 30 }
stop_signal = "INT"
stop_timeout = 20

[processes.migrate]
oneshot = true
timeout = 120
restart = { policy = "on-failure", limit = 2 }

[processes.cache]
ready = "tcp:$PORT"
stop_signal = "QUIT"

[processes.web]
after = ["migrate", "cache"]
ready = { probe = "http:$PORT/health?full=1", interval = 0.5, timeout = 45 }
stop_signal = "QUIT"
stop_timeout = 12.5

[processes.worker]
after = ["db"]
ready = "file:/tmp/worker ready"
restart = { policy = "on-failure", delay = 2, max_delay = 30, limit = 5, window = 60 }
stop_signal = "INT"
stop_timeout = 30

[processes.clock]
after = ["worker"]
ready = "log:^clock started"
restart = "always"
"""

LIFECYCLE_ENV = {"DATABASE_URL": "postgres://db:5432/app?sslmode=disable", "PCT": "100%"}


def lifecycle_settings(toml: str = LIFECYCLE_TOML) -> lifecycle.Settings:
    """`corral.toml` text read the way `corral export` reads it."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / lifecycle.CONFIG_FILE).write_text(toml)
        return lifecycle.load_file(Path(tmp))


def lifecycle_context(
    env: Mapping[str, str] | None = None,
    toml: str = LIFECYCLE_TOML,
    procfile: str = LIFECYCLE_PROCFILE,
    **overrides: object,
) -> ExportContext:
    """The lifecycle scenario: `procfile` with `toml` as its corral.toml."""
    entries = parse(procfile)
    known = [e.name for e in entries]
    settings = lifecycle_settings(toml)
    fields: dict[str, object] = {
        "env": dict(LIFECYCLE_ENV if env is None else env),
        "procfile": procfile,
        "counts": {"web": 2},
        "policies": lifecycle.policies(settings, known),
        "restart_given": frozenset(k for k in known if "restart" in settings.processes.get(k, {})),
    }
    fields.update(overrides)
    return context(**fields)  # type: ignore[arg-type]
