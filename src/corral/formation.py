"""The formation: which instances run, with what name, PORT and environment.

Pure functions from Procfile entries and options to `ProcessSpec`s; nothing here
touches processes or files.  The rules are honcho's and foreman's, with the two
honcho bugs fixed (see README, "Compatibility"):

* instance names are `type.N`, N from 1;
* `PORT = base + 100 * (index of the type in the Procfile) + (N - 1)`: the index
  is the position in the Procfile, so selecting `start worker` or scaling a type
  to 0 never moves another type's port;
* `-p` beats `PORT` from `.env` (honcho lets `.env` win);
* each child gets `PORT`, `PS` (foreman/Heroku) and `HONCHO_PROCESS_NAME`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from string import Template

from corral.errors import UsageError
from corral.procfile import Entry
from corral.specs import Policy, ProcessSpec

DEFAULT_PORT = 5000
WHOLE_NUMBER = re.compile(r"[0-9]+")  # not int(): it also takes "+2", "1_0", " 3"
PORT_STEP = 100


def parse_counts(values: Iterable[str], known: Sequence[str]) -> dict[str, int]:
    """Parse `-c web=2,worker=0` (possibly given several times) into counts."""
    counts: dict[str, int] = {}
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, number = item.partition("=")
            name, number = name.strip(), number.strip()
            if not sep or not name:
                raise UsageError(f"bad concurrency {item!r}: expected NAME=COUNT, e.g. web=2")
            if number.startswith("-") and number[1:].isdecimal():
                raise UsageError(f"bad concurrency {item!r}: count must be 0 or more")
            if not WHOLE_NUMBER.fullmatch(number):
                raise UsageError(f"bad concurrency {item!r}: {number!r} is not a whole number")
            count = int(number)
            check_known(name, known, "concurrency")
            counts[name] = count
    return counts


def parse_names(values: Iterable[str]) -> list[str]:
    """Split comma-separated name lists (`-q web,worker`) into names."""
    return [n.strip() for value in values for n in value.split(",") if n.strip()]


def check_known(name: str, known: Sequence[str], what: str) -> None:
    if name not in known:
        raise UsageError(f"{what}: unknown process {name!r} (the Procfile has: {', '.join(known)})")


def expand(
    entries: Sequence[Entry],
    *,
    env: Mapping[str, str],
    base_port: int = DEFAULT_PORT,
    counts: Mapping[str, int] | None = None,
    selected: Sequence[str] = (),
    quiet: Iterable[str] = (),
    tty: Iterable[str] = (),
    cwd: str | None = None,
    policies: Mapping[str, Policy] | None = None,
) -> list[ProcessSpec]:
    """Expand entries into instances.

    `env` is the base environment of every child (OS environment overlaid by
    the `.env` files); `selected` limits the run to those types, in Procfile
    order; `quiet` names types or instances whose output is hidden; `tty`
    names types or instances to run on a pseudo-terminal (`*`: all);
    `policies` gives each type its lifecycle (a probe's `$PORT` and other
    `$VARS` become the instance's values).
    """
    known = [e.name for e in entries]
    for name in selected:
        check_known(name, known, "start")
    instance_names = {
        f"{e.name}.{i}" for e in entries for i in range(1, (counts or {}).get(e.name, 1) + 1)
    }
    quiet_set, tty_set = set(quiet), set(tty)
    for what, names in (("quiet", quiet_set), ("tty", tty_set - {"*"})):
        for name in names:
            if name not in known and name not in instance_names:
                check_known(name, known, what)
    specs: list[ProcessSpec] = []
    for index, entry in enumerate(entries):
        if selected and entry.name not in selected:
            continue
        for n in range(1, (counts or {}).get(entry.name, 1) + 1):
            name = f"{entry.name}.{n}"
            port = base_port + PORT_STEP * index + (n - 1)
            child_env = dict(env)
            child_env.update(PORT=str(port), PS=name, HONCHO_PROCESS_NAME=name)
            specs.append(
                ProcessSpec(
                    name=name,
                    kind=entry.name,
                    command=entry.command,
                    env=child_env,
                    cwd=cwd,
                    port=port,
                    quiet=entry.name in quiet_set or name in quiet_set,
                    tty=bool({"*", entry.name, name} & tty_set),
                    policy=_instance_policy((policies or {}).get(entry.name), child_env),
                )
            )
    return specs


def _instance_policy(policy: Policy | None, env: Mapping[str, str]) -> Policy:
    if policy is None:
        return Policy()
    if policy.ready is None or "$" not in policy.ready.target:
        return policy
    target = Template(policy.ready.target).safe_substitute(env)
    return replace(policy, ready=replace(policy.ready, target=target))
