"""Hostile configuration generators for the config fuzzer.

`make_case(seed, index)` builds one app directory's files (Procfile, `.env`,
`corral.toml`, `pyproject.toml`) and `start` options from a `random.Random`
seeded with both numbers, so any case can be rebuilt alone from the pair the
failure message prints.  Each case mostly attacks one file and keeps the
others plausible, so that one early error does not hide every other file.

Commands are chosen so that nothing a case runs can do harm: a fixed set of
harmless shell commands, and junk only ever inside single quotes after
`echo` (no quote, no newline: it cannot end the quoting or the line).
Probes only reach 127.0.0.1 or files in the app directory (no name lookups).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

LONG = 200_000  # a "very long line"
SECRET_PREFIX = "s3cr3t-"

Files = dict[str, bytes]


@dataclass
class Case:
    """One app directory and how to start it."""

    seed: int
    index: int
    kind: str  # which generator made it
    files: Files
    start_args: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # must never be printed by corral

    def describe(self, limit: int = 600) -> str:
        shown = {name: data[:limit] for name, data in self.files.items()}
        return (
            f"case seed={self.seed} index={self.index} kind={self.kind} "
            f"start_args={self.start_args} files={shown}"
        )


# -- building blocks ------------------------------------------------------------

LONG_RUNNING = ["exec sleep 30", "sleep 30", "exec sleep 30 # comment", "sleep 30 & wait"]
QUICK = ["echo hello", "exit 3", "true", 'echo "port=$PORT"', "printf 'no newline'"]
ORPHANING = ["sleep 30 & echo started a daemon", "(sleep 30 &); exec sleep 30"]
NAMES = ["web", "worker", "clock", "release", "a-b_c", "W9", "-_-", "x" * 300]
ODD_NAMES = ["wéb", "web.1", "", " web", "web ", "we b", "w\tb", "web\x00", "web:x", "$web", "web!"]
SEPARATORS = [":", ": ", ":\t", ":   "]
ODD_SEPARATORS = [" :", "::", "", " : "]
EOLS = ["\n", "\r\n"]
JUNK_CHARS = (
    "abcXYZ019 _-.:=#'\"\\$`{}()[]*?!;&|<>~%@^,/\t"
    "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\xa0\u2028\u200b\ufeff\ufffdé€😀"
)


def junk(rng: random.Random, size: int, chars: str = JUNK_CHARS) -> str:
    return "".join(rng.choice(chars) for _ in range(size))


def junk_bytes(rng: random.Random, size: int) -> bytes:
    """Binary junk that is certainly not valid UTF-8 (it holds a lone 0xff)."""
    data = bytearray(rng.randrange(256) for _ in range(size))
    data.insert(rng.randrange(len(data) + 1), 0xFF)
    return bytes(data)


def echo_junk(rng: random.Random, size: int) -> str:
    """`echo '...'` around junk that cannot leave the quotes or the line."""
    text = junk(rng, size).replace("'", "").replace("\n", "")
    return f"echo '{text}'"


def command(rng: random.Random, quick: float = 0.15) -> str:
    roll = rng.random()
    if roll < quick:
        return rng.choice(QUICK)
    if roll < quick + 0.05:
        return rng.choice(ORPHANING)
    return rng.choice(LONG_RUNNING)


def plain_procfile(rng: random.Random, types: int | None = None) -> str:
    names = rng.sample(NAMES[:-1], types or rng.randint(1, 3))
    return "".join(f"{n}: {command(rng)}\n" for n in names)


# -- Procfiles ------------------------------------------------------------------


def hostile_procfile(rng: random.Random) -> tuple[str, bytes, list[str]]:
    """(kind, content, extra start args)."""
    eol = rng.choice(EOLS)
    variant = rng.randrange(14)
    lines: list[str] = []
    names = rng.sample(NAMES, rng.randint(1, 3))
    if variant == 0:  # odd names
        for name in [*names[:1], rng.choice(ODD_NAMES)]:
            lines.append(f"{name}{rng.choice(SEPARATORS)}{command(rng)}")
        return "procfile-odd-name", eol.join(lines).encode(), []
    if variant == 1:  # odd separators
        lines.append(f"{names[0]}{rng.choice(ODD_SEPARATORS)}{command(rng)}")
        return "procfile-odd-separator", eol.join(lines).encode(), []
    if variant == 2:  # junk in a command (NUL, control characters, unicode)
        lines = [f"{n}: {command(rng)}" for n in names]
        lines.insert(rng.randrange(len(lines) + 1), f"junk: {echo_junk(rng, rng.randint(1, 40))}")
        return "procfile-junk-command", eol.join(lines).encode(), []
    if variant == 3:  # a NUL in a command after a long-running entry
        text = f"a: exec sleep 30{eol}b: echo a\0b{eol}"
        return "procfile-nul", text.encode(), []
    if variant == 4:  # a huge line: entry, junk or comment
        big = rng.choice(["x" * LONG, "web: echo " + "y" * LONG, "#" + "z" * LONG, "w" * LONG])
        text = eol.join([f"{names[0]}: {command(rng)}", big]) + eol
        return "procfile-huge-line", text.encode(), []
    if variant == 5:  # shell line continuation
        text = eol.join(
            ["web: gunicorn app:app \\", rng.choice(["    --workers 4", "--x", "\tw: y"])]
        )
        return "procfile-continuation", (text + eol).encode(), []
    if variant == 6:  # binary junk (invalid UTF-8) somewhere
        head = f"{names[0]}: {command(rng)}{eol}".encode() if rng.random() < 0.5 else b""
        return "procfile-binary", head + junk_bytes(rng, rng.randint(1, 300)), []
    if variant == 7:  # BOM, blank and comment noise, lone CRs
        text = plain_procfile(rng).replace("\n", rng.choice(["\n", "\r\n", "\n\n  \n# c\n", "\r"]))
        prefix = rng.choice(["\ufeff", "", "\ufeff\ufeff", "\n\n"])
        return "procfile-noise", (prefix + text).encode(), []
    if variant == 8:  # empty, blank or comments only
        return "procfile-empty", rng.choice([b"", b"\n\n", b"# c\n", b"\xef\xbb\xbf", b"   "]), []
    if variant == 9:  # duplicates, case-different names
        text = f"web: {command(rng)}{eol}Web: {command(rng)}{eol}web: {command(rng)}{eol}"
        return "procfile-duplicate", text.encode(), []
    if variant == 10:  # many types
        count = rng.randint(20, 40)
        text = "".join(f"t{i}: exec sleep 30{eol}" for i in range(count))
        return "procfile-many", text.encode(), []
    if variant == 11:  # hostile -c / -p
        text = plain_procfile(rng)
        args = rng.choice(
            [
                ["-c", "web=99999999999999999999999"],
                ["-c", "web=10001"],
                ["-c", "web=" + "9" * 5000],
                ["-c", "web=-1"],
                ["-c", "nope=1"],
                ["-c", "web=2", "-p", "65535"],
                ["-p", "0"],
                ["-p", "70000"],
                ["-p", "abc"],
                ["-p", "65500"],
                ["-c", "," * 1000],
                ["-c", "web=0,worker=0,clock=0,release=0,a-b_c=0,W9=0,-_-=0"],
            ]
        )
        return "procfile-options", text.encode(), args
    if variant == 12:  # a very long process name used everywhere
        name = "n" * rng.choice([60, 61, 5000])
        return "procfile-long-name", f"{name}: exec sleep 30{eol}".encode(), ["-c", f"{name}=1"]
    # junk lines that cannot be entries (they start with a blank)
    lines = [f"{n}: {command(rng)}" for n in names]
    lines.insert(
        rng.randrange(len(lines) + 1), " " + junk(rng, rng.randint(1, 60)).replace("\n", "")
    )
    return "procfile-junk-line", eol.join(lines).encode(), []


# -- .env -----------------------------------------------------------------------

SETTINGS = {
    "PORT": ["0", "65536", "99999999999999999999", "abc", " 5000", "-1", "1e3", ""],
    "CORRAL_CONCURRENCY": ["web=99999999999999", "web=-1", "=", "web", "nope=2", "web=1.5"],
    "CORRAL_TIMEOUT": ["nan", "inf", "-1", "1e309", "abc", "0"],
    "PROCFILE": ["nope", "Procfile\t", "", "."],
    "CORRAL_QUIET": ["nope", "web.99", "web," * 1000],
    "CORRAL_TTY": ["maybe", "nope", "web.0"],
    "CORRAL_LOG_FORMAT": ["xml", "JSON", ""],
    "CORRAL_COLOUR": ["sometimes", "ALWAYS"],
    "CORRAL_READY": ["web=bogus:x", "web=tcp:", "web=tcp:99999", "web=tcp:$NOPE", "nope=tcp:1"],
    "CORRAL_STOP_SIGNAL": ["web=KILLME", "web=0", "web=999", "web="],
    "CORRAL_STOP_TIMEOUT": ["web=nan", "web=-1", "web=1e999"],
    "CORRAL_RESTART": ["web=sometimes", "web=", "nope=always"],
    "CORRAL_ONESHOT": ["nope", ","],
    "CORRAL_AFTER": ["web:web", "web:worker,worker:web", "web:nope"],
    "CORRAL_RELEASE": ["maybe", "2"],
    "CORRAL_RELEASE_TIMEOUT": ["-5", "x"],
    "CORRAL_READY_TIMEOUT": ["nan", "-1"],
}


def secret(rng: random.Random) -> str:
    return SECRET_PREFIX + "".join(rng.choice("0123456789abcdef") for _ in range(16))


def hostile_env(rng: random.Random) -> tuple[str, bytes, list[str]]:
    """(kind, content, secrets that corral must never print)."""
    eol = rng.choice(["\n", "\r\n", "\r"])
    value = secret(rng)
    ok = [f"PLAIN=one{eol}", f"export EXPORTED='two'{eol}", f'MULTI="a{eol}b"{eol}']
    variant = rng.randrange(12)
    if variant == 0:  # syntax errors around a secret
        bad = rng.choice(
            [
                f'API_KEY="{value}',
                f"API_KEY='{value}",
                f'API_KEY="{value}"{value}',
                f"{value} {value}",
                f"API KEY={value}",
                f"={value}",
                f"''={value}",
                f"'unclosed={value}",
            ]
        )
        return "env-syntax", "".join(ok).encode() + bad.encode() + eol.encode(), [value]
    if variant == 1:  # NUL in key or value
        bad = rng.choice([f"API_KEY={value}\0", f"A\0B={value}", f'API_KEY="{value}\0"', "\0"])
        return "env-nul", (ok[0] + bad + eol).encode(), [value]
    if variant == 2:  # keys that are not names
        bad = rng.choice(
            [f"'a=b'={value}", f"'a b'={value}", f"'\x1b'={value}", f"'{'k' * LONG}'=1"]
        )
        return "env-bad-key", (ok[0] + bad + eol).encode(), [value]
    if variant == 3:  # invalid UTF-8
        data = (ok[0] + f"TOKEN={value}{eol}").encode() + junk_bytes(rng, rng.randint(1, 50))
        return "env-binary", data, [value]
    if variant == 4:  # exponential ${} expansion
        lines = rng.randint(15, 45)
        text = (
            "V0=ab"
            + eol
            + "".join(f"V{i}=${{V{i - 1}}}${{V{i - 1}}}{eol}" for i in range(1, lines))
        )
        return "env-exponential", text.encode(), []
    if variant == 5:  # many references to one big value
        text = f"BIG={'x' * 100_000}{eol}" + "".join(f"K{i}=${{BIG}}{eol}" for i in range(40))
        return "env-total", text.encode(), []
    if variant == 6:  # huge lines, long blank runs (python-dotenv is quadratic on them)
        text = rng.choice(
            [
                f"A=x{' ' * 60_000}y{eol}",
                f"A={'v' * LONG}{eol}",
                f"{'K' * LONG}=1{eol}",
                f"# {'c' * LONG}{eol}",
                f'A="{" " * 60_000}{eol}',
            ]
        )
        return "env-huge-line", text.encode(), []
    if variant == 7:  # odd but valid dialect, BOM, nesting, self-reference
        text = rng.choice(["\ufeff", ""]) + "".join(ok)
        text += f"N=${{A:-${{B}}}}{eol}S=${{S}}x{eol}E=${{{eol}U=${{U:-{'d' * 100}}}{eol}"
        text += f"Q='a\\'b'{eol}D=\"t\\tn\\n\"{eol}C=value # comment{eol}H=#not-a-comment{eol}"
        return "env-dialect", text.encode(), []
    if variant == 8:  # many keys
        text = "".join(f"K{i}={i}{eol}" for i in range(rng.choice([1000, 20_000])))
        return "env-many-keys", text.encode(), []
    # settings with hostile values (not secrets: corral may quote a setting)
    key = rng.choice(sorted(SETTINGS))
    text = "".join(ok) + f"{key}={rng.choice(SETTINGS[key])}{eol}" + f"TOKEN={value}{eol}"
    return f"env-setting-{key}", text.encode(), [value]


# -- corral.toml / pyproject.toml ----------------------------------------------

PROBES = [
    '"tcp:$PORT"',
    '"tcp:127.0.0.1:1"',
    '"http:$PORT/health"',
    '"file:ready.flag"',
    '"log:ready"',
    '"cmd:true"',
    '"cmd:exit 1"',
    '"bogus:x"',
    '"tcp:"',
    '"tcp:99999"',
    '"tcp:$NOPE"',
    '""',
    '"cmd:echo \\u0000"',
    '"log:("',
    '"file:\\u0000"',
    '"http:127.0.0.1:$PORT/a b"',
    "5",
    "[]",
    "{ probe = 1 }",
    '{ probe = "tcp:$PORT", interval = 0 }',
    '{ probe = "tcp:$PORT", interval = nan }',
    '{ probe = "tcp:$PORT", timeout = -1 }',
    '{ probe = "tcp:$PORT", timeout = inf }',
    '{ probe = "tcp:$PORT", extra = 1 }',
]
SETTING_VALUES = {
    "oneshot": ["true", '"yes"', "1", "[]"],
    "restart": [
        '"always"',
        '"sometimes"',
        "1.5",
        '{ policy = "always", delay = -1 }',
        '{ policy = "on-failure", delay = nan }',
        '{ policy = "always", limit = 9223372036854775807 }',
        '{ policy = "always", max_delay = 1e308, delay = 1e308 }',
        '{ policy = "always", window = 0, limit = 0 }',
        '{ policy = "always", bogus = 1 }',
        "{}",
    ],
    "after": ['["worker"]', '"worker"', "[1]", '["nope"]', '["web"]', "[[]]"],
    "stop_signal": ['"QUIT"', '"SIGFOO"', '""', "99", '"0"', '"KILL"', '"STOP"'],
    "stop_timeout": ["0", '"x"', "-1", "inf", "nan", "1e999", "99999999999999999999"],
    "timeout": ["0.5", "-1", '"x"', "1979-05-27"],
    "ready": PROBES,
    "bogus": ["1"],
}


def toml_table(rng: random.Random, names: list[str]) -> str:
    """A `[processes.*]`/`[release]` settings table with hostile values."""
    out = []
    for name in rng.sample(names, rng.randint(1, len(names))):
        out.append(f"[processes.{name}]")
        for key in rng.sample(sorted(SETTING_VALUES), rng.randint(1, 3)):
            out.append(f"{key} = {rng.choice(SETTING_VALUES[key])}")
    if rng.random() < 0.3:
        out.append("[release]")
        out.append(rng.choice(["enabled = false", 'enabled = "no"', "timeout = -5", "bogus = 1"]))
    return "\n".join(out) + "\n"


def hostile_toml(rng: random.Random, names: list[str]) -> tuple[str, bytes]:
    variant = rng.randrange(9)
    if variant == 8:  # deep nesting: arrays and inline tables
        depth = rng.choice([1000, 3000])
        return "toml-deep", rng.choice(
            [
                b"x = " + b"[" * depth + b"]" * depth + b"\n",
                b"x = " + b"{a=" * depth + b"1" + b"}" * depth + b"\n",
            ]
        )
    if variant <= 3:
        return "toml-settings", toml_table(rng, names).encode()
    if variant == 4:  # structural type errors
        return "toml-structure", rng.choice(
            [
                b"processes = 5\n",
                b"[processes]\nweb = 1\n",
                b"[processes.web.ready.deep.deeper]\nx = 1\n",
                b"release = []\n",
                b"[bogus]\n",
                b"a" + b".a" * 5000 + b" = 1\n",
                b'[processes.web]\nready = "' + b"y" * LONG + b'"\n',
            ]
        )
    if variant == 5:  # not TOML at all
        return "toml-syntax", rng.choice(
            [b"[processes.web\n", b"= 1\n", b"ready = 'unclosed\n", b"[processes.web]\nready=\n"]
        )
    if variant == 6:  # invalid UTF-8, NUL, BOM
        return "toml-bytes", rng.choice(
            [
                junk_bytes(rng, 40),
                b"[processes.web]\noneshot = true\x00\n",
                b"\xef\xbb\xbf[release]\n",
            ]
        )
    return "toml-crlf", toml_table(rng, names).replace("\n", "\r\n").encode()


def hostile_pyproject(rng: random.Random, names: list[str]) -> tuple[str, bytes]:
    variant = rng.randrange(5)
    if variant == 0:
        return "pyproject-type", rng.choice(
            [b"tool = 5\n", b"[tool]\ncorral = 5\n", b"[tool]\ncorral = []\n", b"[tool.corral]\n"]
        )
    if variant == 1:
        return "pyproject-syntax", b'[project]\nname = "x"\n[tool.corral\n'
    settings = toml_table(rng, names).replace("[processes.", "[tool.corral.processes.")
    settings = settings.replace("[release]", "[tool.corral.release]")
    return "pyproject-settings", b'[project]\nname = "app"\n' + settings.encode()


# -- cases ------------------------------------------------------------------------


def make_case(seed: int, index: int) -> Case:
    rng = random.Random(f"{seed}:{index}")
    target = rng.choices(["procfile", "env", "toml", "pyproject", "mixed"], [4, 4, 3, 1, 1])[0]
    procfile = plain_procfile(rng).encode()
    kinds: list[str] = []
    files: Files = {}
    args: list[str] = []
    secrets: list[str] = []
    if target in ("procfile", "mixed"):
        kind, procfile, args = hostile_procfile(rng)
        kinds.append(kind)
    files["Procfile"] = procfile
    names = [n for n in NAMES[:-1] if f"{n}:".encode() in procfile] or ["web"]
    if target in ("env", "mixed"):
        kind, files[".env"], secrets = hostile_env(rng)
        kinds.append(kind)
    elif rng.random() < 0.3:
        files[".env"] = f"TOKEN={secret(rng)}\n".encode()
        secrets.append(files[".env"][6:-1].decode())
    if target in ("toml", "mixed"):
        kind, files["corral.toml"] = hostile_toml(rng, names)
        kinds.append(kind)
    if target == "pyproject":
        kind, files["pyproject.toml"] = hostile_pyproject(rng, names)
        kinds.append(kind)
    return Case(seed, index, "+".join(kinds), files, args, secrets)
