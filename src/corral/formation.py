"""The formation: which instances run, with what name, PORT and environment.

Pure functions from Procfile entries and options to `ProcessSpec`s; nothing here
touches processes or files.  The rules are honcho's and foreman's, with the two
honcho bugs fixed (see README, "Compatibility"), and one Heroku rule added:

* instance names are `type.N`, N from 1;
* `PORT = base + 100 * slot + (N - 1)`, where a type's slot is its position in
  the Procfile (`port_slots`), so selecting `start worker` or scaling a type to
  0 never moves another type's port;
* a `release` entry (Heroku's release phase: it finishes before anything else
  starts) takes no slot and gets the base port, so a Heroku Procfile that lists
  `release` first still gives `web` the base port;
* `-p` beats `PORT` from `.env` (honcho lets `.env` win);
* each child gets `PORT`, `PS` (foreman/Heroku) and `HONCHO_PROCESS_NAME`.

Limits, checked before anything is allocated: at most MAX_CONCURRENCY instances
of a type (`-c web=10**23` used to build the list of names first), and no
instance may get a PORT over 65535 (the error names the first that would).
Ports depend on the Procfile alone, never on options such as `--no-release`,
so that `start` and every `export` format agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from corral.errors import UsageError, excerpt
from corral.procfile import Entry
from corral.specs import Policy, ProbeError, ProcessSpec

DEFAULT_PORT = 5000
MAX_PORT = 65535
MAX_CONCURRENCY = 10_000  # instances of one type; more is a typo, not a formation
WHOLE_NUMBER = re.compile(r"[0-9]+")  # not int(): it also takes "+2", "1_0", " 3"
PORT_STEP = 100
RELEASE = "release"  # Heroku's release phase (see lifecycle): no port slot of its own


def port_slots(entries: Sequence[Entry]) -> dict[str, int]:
    """Each type's port slot: its instance N gets `base + PORT_STEP * slot + N - 1`.

    Slots count the types in Procfile order, except `release`, which takes
    none and gets slot 0 (it has finished before the others start).
    """
    slots: dict[str, int] = {}
    taken = 0
    for entry in entries:
        if entry.name == RELEASE:
            slots[entry.name] = 0
        else:
            slots[entry.name] = taken
            taken += 1
    return slots


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
            bad = f"bad concurrency {excerpt(item)}"
            if not sep or not name:
                raise UsageError(f"{bad}: expected NAME=COUNT, e.g. web=2")
            if number.startswith("-") and number[1:].isdecimal():
                raise UsageError(f"{bad}: count must be 0 or more")
            if not WHOLE_NUMBER.fullmatch(number):
                raise UsageError(f"{bad}: {excerpt(number)} is not a whole number")
            # compare digits before int(): int() of 5000 digits raises
            digits = number.lstrip("0")
            if len(digits) > len(str(MAX_CONCURRENCY)) or int(number) > MAX_CONCURRENCY:
                raise UsageError(f"{bad}: at most {MAX_CONCURRENCY} instances of a process type")
            check_known(name, known, "concurrency")
            counts[name] = int(number)
    return counts


def parse_names(values: Iterable[str]) -> list[str]:
    """Split comma-separated name lists (`-q web,worker`) into names."""
    return [n.strip() for value in values for n in value.split(",") if n.strip()]


def check_known(name: str, known: Sequence[str], what: str) -> None:
    if name not in known:
        raise UsageError(
            f"{what}: unknown process {excerpt(name)} (the Procfile has: {_some(known)})"
        )


def _some(names: Sequence[str], width: int = 60) -> str:
    """`a, b, c`, or as many names as fit in about `width` characters and a count."""
    shown: list[str] = []
    used = 0
    for name in names:
        used += len(name) + 2
        if used > width and shown:
            return f"{', '.join(shown)}, ... ({len(names)} types)"
        shown.append(name if len(name) <= width else name[:width] + "...")
    return ", ".join(shown)


def _is_instance(name: str, counts: Mapping[str, int], known: Sequence[str]) -> bool:
    """`name` is `type.N` for a known type and 1 <= N <= its count."""
    kind, dot, number = name.rpartition(".")
    if not dot or kind not in known or not number.isdecimal() or len(number) > 6:
        return False
    return str(int(number)) == number and 1 <= int(number) <= counts.get(kind, 1)


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
    `policies` gives each type its lifecycle (see `_instance_policy`).
    """
    known = [e.name for e in entries]
    counts = counts or {}
    for name in selected:
        check_known(name, known, "start")
    for name, count in counts.items():
        if count < 0:
            raise UsageError(f"concurrency: {excerpt(name)}={count}: count must be 0 or more")
        if count > MAX_CONCURRENCY:
            raise UsageError(
                f"concurrency: {excerpt(name)}: at most {MAX_CONCURRENCY} instances "
                "of a process type"
            )
    quiet_set, tty_set = set(quiet), set(tty)
    for what, names in (("quiet", quiet_set), ("tty", tty_set - {"*"})):
        for name in names:
            if name not in known and not _is_instance(name, counts, known):
                check_known(name, known, what)
    slots = port_slots(entries)
    running = [e for e in entries if not selected or e.name in selected]
    for entry in running:  # every port is checked before any spec is built
        first = base_port + PORT_STEP * slots[entry.name]
        count = counts.get(entry.name, 1)
        if count and first + count - 1 > MAX_PORT:
            n = max(1, MAX_PORT - first + 2)
            raise UsageError(
                f"{entry.name}.{n}: PORT {first + n - 1} is over {MAX_PORT} "
                f"(base port {base_port}, {PORT_STEP} ports per process type): "
                "use a lower -p/PORT or fewer instances"
            )
    specs: list[ProcessSpec] = []
    for entry in running:
        for n in range(1, counts.get(entry.name, 1) + 1):
            name = f"{entry.name}.{n}"
            port = base_port + PORT_STEP * slots[entry.name] + (n - 1)
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
    """The lifecycle of one instance: its type's policy, unchanged.

    A probe's target stays as written: the probe fills in `$PORT` and other
    `$VARS` itself when it runs (a `cmd:` probe's shell expands its own), so no
    value ever becomes shell text or shows in a notice.  What only this
    instance's environment can tell is checked now (a `$VAR` that is unset, a
    `$PORT` that is not a port), instead of in a probe failing 60 s later.
    """
    if policy is None:
        return Policy()
    if policy.ready is not None:
        try:
            policy.ready.check_env(env)
        except ProbeError as exc:
            raise UsageError(f"ready {policy.ready}: {exc}") from None
    return policy
