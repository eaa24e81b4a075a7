"""`corral export supervisord`: one `<app>.conf` to include from supervisord.conf,
with a `[program:<app>-<type>-<n>]` per instance and a `[group:<app>]`.

Owns supervisord's config escaping, which has three layers (supervisor 4.x):

1. configparser with `inline_comment_prefixes=(';', '#')`: a `;` or `#` after
   whitespace ends the value, a line break ends it, `%(here)s` is replaced;
2. `%` formatting (`%(program_name)s`...), so a literal `%` is `%%`;
3. `command=` is split with `shlex.split` (POSIX rules), while `environment=`
   goes through `datatypes.dict_of_key_value_pairs`: non-POSIX `shlex`, where a
   quoted value cannot contain its own quote character, no escapes exist, and
   the quotes (any `'`/`"` at either end of the value) are stripped.

So `environment=` carries PORT, PS and the .env values it can hold exactly;
a value it cannot (a line break, a quote at either end, both kinds of quote,
`;`/`#` after whitespace, `%(here)s`) is exported by the wrapper shell instead:
`sh -c 'export K=...; exec <command>'`, where line breaks are rebuilt from
`printf` output so the config line stays one line.  In `command=`, each
argument is double-quoted for shlex, and `;`, `#` (and `(` after `%`) are
backslash-escaped outside the quotes.

`stopasgroup`/`killasgroup` make stop and kill reach the whole process group
(a command run under the shell included); logs go to `<log>/<type>-<n>.log`
and `.error.log` (the directory must exist).
"""

from __future__ import annotations

import re
import shlex

from corral.errors import CorralError
from corral.export.commands import shell_script
from corral.export.model import PRIVATE, ExportContext, File, Restart
from corral.export.plan import Plan, ProcessType, plan
from corral.export.templates import Templates
from corral.export.text import whole_seconds

AUTORESTART: dict[Restart, str] = {"on-failure": "unexpected", "always": "true", "no": "false"}
DEFAULT_PRIORITY = 999  # supervisord's
DEFAULT_STARTSECS = 1
DEFAULT_STARTRETRIES = 3
_PLAIN_ARG = re.compile(r"[A-Za-z0-9_@+=:,./-]+")
_LINE_BREAKS = {"\n": "_corral_nl", "\r": "_corral_cr"}
_LINE_BREAK_DEFS = {
    "_corral_nl": "_corral_nl=$(printf '\\nx'); _corral_nl=${_corral_nl%x}; ",
    "_corral_cr": "_corral_cr=$(printf '\\r'); ",
}


def _comment_cut(text: str) -> bool:
    """Would configparser take part of `text` for an inline comment?"""
    return any(ch in ";#" and i > 0 and text[i - 1].isspace() for i, ch in enumerate(text))


def env_token(value: str) -> str | None:
    """`value` as a token dict_of_key_value_pairs gives back exactly, or None."""
    if "\n" in value or "\r" in value or "%(here)s" in value or _comment_cut(value):
        return None
    if value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        return None  # the parser strips quote characters at both ends
    for quote in ('"', "'"):
        if quote not in value:
            return (quote + value + quote).replace("%", "%%")
    return None


def plain(value: str, what: str) -> str:
    """A one-line value (path, user): `%` doubled; unrepresentable is an error."""
    if (
        "\n" in value
        or "\r" in value
        or "%(here)s" in value
        or _comment_cut(value)
        or value != value.strip()
    ):
        raise CorralError(f"cannot export {what} {value!r} to supervisord")
    return value.replace("%", "%%")


def shell_literal(value: str) -> tuple[str, set[str]]:
    """A sh word for `value` with no line break in it, and the helper vars it uses."""
    parts: list[str] = []
    used: set[str] = set()
    for piece in re.split(r"([\n\r])", value):
        if piece in _LINE_BREAKS:
            parts.append(f'"${_LINE_BREAKS[piece]}"')
            used.add(_LINE_BREAKS[piece])
        elif piece:
            parts.append(shlex.quote(piece))
    return "".join(parts) or "''", used


def command_arg(arg: str, what: str) -> str:
    """One `command=` argument as text that configparser, `%` and shlex.split undo.

    Double-quoted for shlex (where only `\\` and `\"` are escapes), so the
    script's own single quotes stay readable; `;`, `#` and a `(` after `%` are
    written `\\;` etc. outside the quotes, out of configparser's and `%(here)s`'s way.
    """
    if "\n" in arg or "\r" in arg:
        raise CorralError(f"cannot export {what} to supervisord: it contains a line break")
    if _PLAIN_ARG.fullmatch(arg):
        return arg
    out: list[str] = []
    quoted = False
    for i, ch in enumerate(arg):
        if ch in ";#" or (ch == "(" and i > 0 and arg[i - 1] == "%"):
            if quoted:
                out.append('"')
                quoted = False
            out.append("\\" + ch)
            continue
        if not quoted:
            out.append('"')
            quoted = True
        out.append("\\" + ch if ch in '"\\' else ch)
    if quoted:
        out.append('"')
    return ("".join(out) or '""').replace("%", "%%")


def lifecycle_values(t: ProcessType, priority: int) -> dict[str, str]:
    """The lifecycle placeholders of a program."""
    retries = DEFAULT_STARTRETRIES
    if t.backoff is not None and not t.oneshot:
        retries = t.backoff.limit
    return {
        "autorestart": "false" if t.oneshot else AUTORESTART[t.restart],
        "startsecs": "0" if t.oneshot else str(DEFAULT_STARTSECS),
        "startretries": str(retries),
        "priority": str(priority),
        "stopsignal": t.stop_signal,
        "stopwaitsecs": str(whole_seconds(t.stop_timeout)),
    }


def priorities(exported: Plan) -> dict[str, int]:
    """supervisord's default for all, or 100, 200, ... by dependency level."""
    types = exported.types
    if not any(t.after for t in types):
        return {t.name: DEFAULT_PRIORITY for t in types}
    return {name: 100 * (level + 1) for name, level in exported.levels().items()}


def render(ctx: ExportContext) -> list[File]:
    """`<app>.conf`."""
    exported = plan(ctx)
    templates = Templates("supervisord", ctx.template_dir)
    log_dir = ctx.log_dir.rstrip("/")
    priority = priorities(exported)
    sections: list[str] = []
    programs: list[str] = []
    for inst in exported.instances:
        program = f"{ctx.app}-{inst.kind.name}-{inst.num}"
        native: list[str] = []
        exports: dict[str, str] = {}
        helpers: set[str] = set()
        for key, value in inst.env.items():
            token = env_token(value)
            if token is not None:
                native.append(f"{key}={token}")
            else:
                word, used = shell_literal(value)
                exports[key] = word
                helpers |= used
        prefix = "".join(_LINE_BREAK_DEFS[h] for h in sorted(helpers))
        if exports:
            prefix += "export " + " ".join(f"{k}={w}" for k, w in exports.items()) + "; "
        script = prefix + shell_script(inst.kind.command)
        what = f"the command of {inst.kind.name!r}"
        base = f"{log_dir}/{inst.kind.name}-{inst.num}"
        values = {
            "app": ctx.app,
            "type": inst.kind.name,
            "num": str(inst.num),
            "instance": inst.name,
            "program": program,
            "command": " ".join(command_arg(a, what) for a in (ctx.shell, "-c", script)),
            "directory": plain(str(ctx.app_root), "app root"),
            "user": plain(ctx.user, "user"),
            "environment": ",".join(native),
            **lifecycle_values(inst.kind, priority[inst.kind.name]),
            "stdout_logfile": plain(f"{base}.log", "log file"),
            "stderr_logfile": plain(f"{base}.error.log", "log file"),
        }
        sections.append(templates.render("supervisord.program", values))
        programs.append(program)
    if programs:  # supervisord rejects a group without programs
        group = {"app": ctx.app, "programs": ",".join(programs)}
        sections.append(templates.render("supervisord.group", group))
    header = (
        f"; Generated by `corral export supervisord` for {ctx.app}.\n"
        f"; Include it from supervisord.conf: [include] files = /path/to/{ctx.app}.conf\n"
        f"; Control it as a group: supervisorctl start|stop|restart {ctx.app}:*\n"
    )
    mode = PRIVATE if ctx.env and programs else File.mode  # environment= holds the values
    return [File(f"{ctx.app}.conf", header + "\n" + "\n".join(sections), mode)]
