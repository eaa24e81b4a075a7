r"""`corral export systemd`: an `<app>.target` plus one `<app>-<type>.<n>.service`
per instance (foreman's names), each `PartOf=` the target, so that
`systemctl start|stop|restart <app>.target` acts on the whole app.

Owns systemd's unit-file escaping (systemd.syntax(7), systemd.service(5)):

* every value goes through specifier expansion, so `%` is written `%%`;
* `Environment="KEY=value"` is unquoted with C escapes: `\\`, `\"`, and control
  characters as `\n`, `\t`, `\xNN`, so newlines survive; `$` is not special there;
* `ExecStart=` words are unquoted the same way and then `$VAR` is expanded, so
  `$` is written `$$` (the shell, not systemd, expands `$PORT`).

Output goes to the journal; `-l` is not used.  `KillMode=mixed`: SIGTERM to the
app (the main PID, thanks to `exec`), SIGKILL to whatever is left of its cgroup
after `TimeoutStopSec=`.  Restart policy: see `corral.export`.
"""

from __future__ import annotations

import re

from corral.export.common import Instance, Templates, check, instance_env, instances, seconds
from corral.export.common import shell_script as make_script
from corral.export.model import ExportContext, File, Restart

RESTART: dict[Restart, str] = {"on-failure": "on-failure", "always": "always", "no": "no"}
_PLAIN_WORD = re.compile(r"[A-Za-z0-9/_.+=,:-]+")
_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def c_quote(text: str) -> str:
    """A double-quoted systemd word whose C-unescaped value is `text`."""
    out = []
    for ch in text:
        if ch in _C_ESCAPES:
            out.append(_C_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def specifiers(text: str) -> str:
    """Escape `%` so that specifier expansion gives `text` back."""
    return text.replace("%", "%%")


def environment_line(key: str, value: str) -> str:
    return "Environment=" + c_quote(specifiers(f"{key}={value}"))


def exec_word(text: str, first: bool = False) -> str:
    """One ExecStart= argument: `%` and `$` doubled, quoted unless plain.

    The first word (the program) must not start with a prefix character
    (`@-:+!`), which systemd would read as a flag.
    """
    text = specifiers(text).replace("$", "$$")
    if _PLAIN_WORD.fullmatch(text) and not (first and text[0] in "@-:+!"):
        return text
    return c_quote(text)


def unit_name(ctx: ExportContext, inst: Instance) -> str:
    return f"{ctx.app}-{inst.kind.name}.{inst.num}.service"


def render(ctx: ExportContext) -> list[File]:
    """The target and the service units."""
    check(ctx)
    templates = Templates("systemd", ctx.template_dir)
    target = f"{ctx.app}.target"
    units: list[File] = []
    for inst in instances(ctx):
        env = instance_env(ctx, inst)
        unit = unit_name(ctx, inst)
        values = {
            "app": ctx.app,
            "type": inst.kind.name,
            "num": str(inst.num),
            "instance": inst.name,
            "unit": unit,
            "target": target,
            "user": specifiers(ctx.user),
            "workdir": specifiers(str(ctx.app_root)),
            "environment": "\n".join(environment_line(k, v) for k, v in env.items()),
            "exec_start": " ".join(
                (
                    exec_word(ctx.shell, first=True),
                    exec_word("-c"),
                    exec_word(make_script(inst.kind.command)),
                )
            ),
            "restart": RESTART[inst.kind.restart],
            "timeout": seconds(ctx.timeout),
            "identifier": f"{ctx.app}-{inst.name}",
        }
        units.append(File(unit, templates.render("systemd.service", values)))
    wants = " ".join(f.path for f in units)
    values = {"app": ctx.app, "target": target, "wants": wants}
    target_file = File(target, templates.render("systemd.target", values))
    return [target_file, *units]
