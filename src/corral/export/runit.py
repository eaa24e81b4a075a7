"""`corral export runit`: one service directory per instance,
`<app>-<type>-<n>/{run, finish, control/t, control/k, env/, log/run}`, to link
into runsvdir's directory (e.g. /etc/service).

Owns runit's envdir encoding.  `chpst -e DIR` (runit 2.1.2, as daemontools'
envdir) sets each variable to the *first line* of its file, with trailing
spaces and tabs removed and NUL bytes turned into newlines; an empty file unsets
the variable.  So a file holds `value` with `\\n` written as NUL plus a final
newline, which gives back any value, newlines included, except one ending in a
space or a tab: such a variable is exported by `run` itself, single-quoted.

`run` loads the envdir with chpst and only then starts the shell, so that
`$PORT` and the .env values in the command are expanded from it (foreman and
honcho expanded them too early).  The restart policy (see `corral.export`)
lives in `finish`, which marks the service down after an exit runit should
not restart.  runsv never sends SIGKILL by itself: the grace period applies to
`sv -w SECONDS force-stop`, as `run` notes.

Stopping: `run` starts the shell with `chpst -P`, as the leader of its own
process group, and `control/t` (which runsv runs instead of sending SIGTERM,
for `sv stop`, `down`, `restart`, `term`) sends the type's stop signal to
that whole group; `control/k` does the same with SIGKILL (`sv kill`,
`force-stop`).  So a command run under the shell (not a simple command) stops
with its children, and `stop_signal` is honoured.
"""

from __future__ import annotations

import shlex

from corral.export.model import (
    PRIVATE,
    PRIVATE_EXECUTABLE,
    ExportContext,
    File,
    Restart,
    carries_env,
)
from corral.export.plan import Instance, plan
from corral.export.templates import Templates
from corral.export.text import whole_seconds
from corral.shell import exec_command

EXECUTABLE = 0o755

FINISH: dict[Restart, str] = {
    "on-failure": "# A clean exit (0) is not restarted: mark the service down.\n"
    'if [ "$1" = 0 ]; then exec sv down .; fi',
    "always": "# runsv restarts ./run whatever the exit code.\nexit 0",
    "no": "# Never restarted: mark the service down.\nexec sv down .",
}


def envdir_content(value: str) -> str | None:
    """The envdir file that makes chpst set `value`, or None if none can."""
    if value.endswith((" ", "\t")):
        return None
    return value.replace("\n", "\0") + "\n"


def service_dir(ctx: ExportContext, inst: Instance) -> str:
    return f"{ctx.app}-{inst.kind.name}-{inst.num}"


def render(ctx: ExportContext) -> list[File]:
    """The service directories of all instances."""
    exported = plan(ctx)
    templates = Templates("runit", ctx.template_dir)
    log_dir = ctx.log_dir.rstrip("/")
    files: list[File] = []
    for inst in exported.instances:
        base = service_dir(ctx, inst)
        common = {
            "app": ctx.app,
            "type": inst.kind.name,
            "num": str(inst.num),
            "instance": inst.name,
        }
        env_files: list[File] = []
        exports: list[str] = []
        for key, value in inst.env.items():
            content = envdir_content(value)
            if content is None:
                exports.append(f"export {key}={shlex.quote(value)}\n")
            else:
                mode = PRIVATE if key in ctx.env else File.mode
                env_files.append(File(f"{base}/env/{key}", content, mode))
        root = shlex.quote(str(ctx.app_root))
        script = f"cd {root} || exit 111; {exec_command(inst.kind.command)}"
        run = {
            **common,
            "user": shlex.quote(ctx.user),
            "shell": shlex.quote(ctx.shell),
            "script": shlex.quote(script),
            "exports": "".join(exports),
            "timeout": str(whole_seconds(inst.kind.stop_timeout)),  # sv -w: whole seconds
        }
        stop = {
            **common,
            "signal": inst.kind.stop_signal,
            "instead": "SIGTERM",
            "commands": "stop, down, restart, term",
        }
        kill = {**common, "signal": "KILL", "instead": "SIGKILL", "commands": "kill, force-stop"}
        finish = {**common, "restart": inst.kind.restart, "policy": FINISH[inst.kind.restart]}
        log = {
            **common,
            "user": shlex.quote(ctx.user),
            "logdir": shlex.quote(f"{log_dir}/{inst.kind.name}-{inst.num}"),
        }
        exported_keys = [key for key in inst.env if envdir_content(inst.env[key]) is None]
        run_mode = PRIVATE_EXECUTABLE if carries_env(ctx, exported_keys) else EXECUTABLE
        files.append(File(f"{base}/run", templates.render("runit.run", run), run_mode))
        files.append(File(f"{base}/finish", templates.render("runit.finish", finish), EXECUTABLE))
        for name, values in (("t", stop), ("k", kill)):
            text = templates.render("runit.control", values)
            files.append(File(f"{base}/control/{name}", text, EXECUTABLE))
        files.extend(env_files)
        files.append(File(f"{base}/log/run", templates.render("runit.log-run", log), EXECUTABLE))
    return files
