r"""`corral export systemd`: an `<app>.target` plus one `<app>-<type>.<n>.service`
per instance (foreman's names), each `PartOf=` the target, so that
`systemctl start|stop|restart <app>.target` acts on the whole app.

Owns systemd's unit-file escaping (systemd.syntax(7), systemd.service(5)):

* every value goes through specifier expansion, so `%` is written `%%`;
* `Environment="KEY=value"` is unquoted with C escapes: `\\`, `\"`, and control
  characters as `\n`, `\t`, `\xNN`, so newlines survive; `$` is not special there;
* `ExecStart=` words are unquoted the same way and then `$VAR` is expanded, so
  `$` is written `$$` (the shell, not systemd, expands `$PORT`).

Output goes to the journal; `-l` is not used.  `KillMode=mixed`: the stop
signal to the app (the main PID, thanks to `exec`), SIGKILL to whatever is
left of its cgroup after `TimeoutStopSec=`; a command that runs under the
shell (not a simple command, see `corral.shell.simple_command`) gets
`KillMode=control-group` instead, so the stop signal reaches every process of
the unit, not only the shell.

A readiness probe becomes an `ExecStartPost=` wait (`commands.wait_script`):
attempts are silent, a timeout is one journal line and fails the start;
`TimeoutStartSec=` is the probe's timeout plus `WAIT_GRACE`, a backstop for a
probe that hangs.
"""

from __future__ import annotations

import re

from corral.export.commands import WAIT_GRACE, probe_command, wait_script
from corral.export.commands import shell_script as make_script
from corral.export.model import PRIVATE, ExportContext, File, carries_env
from corral.export.plan import Instance, ProcessType, plan
from corral.export.templates import Templates
from corral.export.text import seconds, whole_seconds
from corral.shell import simple_command

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


def exec_line(ctx: ExportContext, script: str) -> str:
    """`<shell> -c <script>` as ExecStart=/ExecStartPost= words."""
    return " ".join((exec_word(ctx.shell, first=True), exec_word("-c"), exec_word(script)))


def unit_settings(ctx: ExportContext, t: ProcessType, units: dict[str, list[str]]) -> str:
    """[Unit] lines: ordering on the dependencies' units, the start limit."""
    lines: list[str] = []
    deps = [unit for dep in t.after for unit in units[dep]]
    if deps:
        lines.append("After=" + " ".join(deps))
        lines.append("Requires=" + " ".join(deps))
    if t.backoff is not None and t.restart != "no":
        # corral allows `limit` restarts in `window`; systemd counts starts
        lines.append(f"StartLimitIntervalSec={seconds(t.backoff.window)}")
        lines.append(f"StartLimitBurst={t.backoff.limit + 1}")
    return "".join(line + "\n" for line in lines)


def service_settings(ctx: ExportContext, t: ProcessType) -> str:
    """[Service] lines after Restart=: one-shot, readiness, back-off, stop signal."""
    lines: list[str] = []
    if t.always_oneshot:
        lines.append("# restart = always: systemd cannot restart a completed Type=oneshot unit")
    if t.oneshot:
        lines += ["Type=oneshot", "RemainAfterExit=yes"]
        if t.policy.run_timeout is not None:
            lines.append(f"TimeoutStartSec={seconds(t.policy.run_timeout)}")
    elif t.ready is not None:
        check = probe_command(t.ready)
        if check is None:
            lines.append(
                "# readiness probe log:...: systemd cannot watch the output, "
                "so units after this one wait only for it to start"
            )
        else:
            loop = wait_script(check, t.ready, t.name)
            lines.append("ExecStartPost=" + exec_line(ctx, loop))
            # the wait reports its own timeout; systemd's is the backstop
            lines.append(f"TimeoutStartSec={whole_seconds(t.ready.timeout) + WAIT_GRACE}")
    if t.backoff is not None and t.restart != "no":
        lines.append(f"RestartSec={seconds(t.backoff.delay)}")
    if t.stop_signal != "TERM":
        lines.append(f"KillSignal=SIG{t.stop_signal}")
    return "".join(line + "\n" for line in lines)


def render(ctx: ExportContext) -> list[File]:
    """The target and the service units."""
    exported = plan(ctx)
    templates = Templates("systemd", ctx.template_dir)
    target = f"{ctx.app}.target"
    units: list[File] = []
    unit_names = {t.name: [unit_name(ctx, i) for i in exported.of(t)] for t in exported.types}
    for inst in exported.instances:
        unit = unit_name(ctx, inst)
        t = inst.kind
        values = {
            "app": ctx.app,
            "type": inst.kind.name,
            "num": str(inst.num),
            "instance": inst.name,
            "unit": unit,
            "target": target,
            "user": specifiers(ctx.user),
            "workdir": specifiers(str(ctx.app_root)),
            "environment": "\n".join(environment_line(k, v) for k, v in inst.env.items()),
            "exec_start": exec_line(ctx, make_script(t.command)),
            "restart": t.completing_restart,  # Type=oneshot cannot be `always`
            "timeout": seconds(t.stop_timeout),
            "identifier": f"{ctx.app}-{inst.name}",
            "kill_mode": "mixed" if simple_command(t.command) else "control-group",
            "unit_settings": unit_settings(ctx, t, unit_names),
            "service_settings": service_settings(ctx, t),
        }
        mode = PRIVATE if carries_env(ctx, inst.env) else File.mode  # Environment= lines
        units.append(File(unit, templates.render("systemd.service", values), mode))
    wants = " ".join(f.path for f in units)
    values = {"app": ctx.app, "target": target, "wants": wants}
    target_file = File(target, templates.render("systemd.target", values))
    return [target_file, *units]
