"""The process set: instance names, PORT, PS/HONCHO_PROCESS_NAME, -c, selection, -d."""

from __future__ import annotations

import re

import pytest

from tests.support import assert_nothing_left, assert_one_error, run_corral

# Each instance reports its identity, then waits until `n` instances have
# reported, so no instance's exit can stop the others before they print.
REPORT = (
    'echo "ID $PS $HONCHO_PROCESS_NAME $PORT"; touch "r.$PS"; '
    'while [ $(ls | grep -c "^r[.]") -lt {n} ]; do sleep 0.02; done'
)


def procfile(*types: str, n: int) -> str:
    return "".join(f"{t}: {REPORT.format(n=n)}\n" for t in types)


def identities(out: str) -> dict[str, tuple[str, int]]:
    """{PS: (HONCHO_PROCESS_NAME, PORT)} from the reports."""
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"ID (\S+) (\S+) (\d+)", line)
        if m:
            assert m.group(1) not in found, line
            found[m.group(1)] = (m.group(2), int(m.group(3)))
    return found


def start(d, *args, env=None):
    for stale in d.glob("r.*"):  # reports of an earlier run in the same directory
        stale.unlink()
    r = run_corral("start", "-t", "1", "--no-prefix", *args, cwd=d, env=env, timeout=15)
    assert r.rc == 0, r
    return identities(r.out)


def ports(ids):
    return {name: port for name, (_, port) in ids.items()}


def test_names_ports_ps_and_honcho_process_name(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", "clock", n=6))
    ids = start(d, "-c", "web=2,worker=3")
    assert ids == {
        "web.1": ("web.1", 5000),
        "web.2": ("web.2", 5001),
        "worker.1": ("worker.1", 5100),
        "worker.2": ("worker.2", 5101),
        "worker.3": ("worker.3", 5102),
        "clock.1": ("clock.1", 5200),
    }


def test_started_lines_name_every_instance(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", n=3))
    r = run_corral("start", "-t", "1", "--no-prefix", "-c", "web=2", cwd=d)
    started = re.findall(r"^(\S+) started \(pid=\d+\)$", r.out, re.M)
    assert sorted(started) == ["web.1", "web.2", "worker.1"], r.out


def test_port_index_is_stable_when_a_type_is_scaled_to_zero(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", "clock", n=2))
    assert ports(start(d, "-c", "worker=0,web=1")) == {"web.1": 5000, "clock.1": 5200}
    d2 = app_dir(**{"P2": procfile("web", "worker", "clock", n=1)})
    assert ports(start(d2, "-f", "P2", "-c", "web=0,worker=0")) == {"clock.1": 5200}


def test_port_index_is_stable_when_types_are_selected(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", "clock", n=1))
    assert ports(start(d, "clock")) == {"clock.1": 5200}
    d2 = app_dir(**{"P2": procfile("web", "worker", "clock", n=2)})
    # given out of Procfile order: still the Procfile's index
    assert ports(start(d2, "-f", "P2", "clock", "worker")) == {"worker.1": 5100, "clock.1": 5200}


def test_start_selected_types_only(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", "clock", n=2))
    r = run_corral("start", "-t", "1", "--no-prefix", "web", "clock", "-c", "web=1", cwd=d)
    assert r.rc == 0, r
    assert set(identities(r.out)) == {"web.1", "clock.1"}
    assert "worker" not in r.out


def test_base_port_option(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", n=3))
    assert ports(start(d, "-p", "8000", "-c", "worker=2")) == {
        "web.1": 8000,
        "worker.1": 8100,
        "worker.2": 8101,
    }
    assert ports(start(d, "--port", "7000", "-c", "worker=2")) == {
        "web.1": 7000,
        "worker.1": 7100,
        "worker.2": 7101,
    }


def test_port_from_os_environment(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", n=2))
    assert ports(start(d, env={"PORT": "6000"})) == {"web.1": 6000, "worker.1": 6100}


def test_dotenv_port_beats_os_port(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", n=2), **{".env": "PORT=9000\n"})
    assert ports(start(d, env={"PORT": "6000"})) == {"web.1": 9000, "worker.1": 9100}


def test_port_option_beats_dotenv_and_os_port(app_dir):
    d = app_dir(Procfile=procfile("web", "worker", n=2), **{".env": "PORT=9000\n"})
    assert ports(start(d, "-p", "8000", env={"PORT": "6000"})) == {
        "web.1": 8000,
        "worker.1": 8100,
    }


def test_dotenv_cannot_override_ps_or_honcho_process_name(app_dir):
    d = app_dir(Procfile=procfile("web", n=1), **{".env": "PS=bogus\nHONCHO_PROCESS_NAME=bogus\n"})
    assert start(d) == {"web.1": ("web.1", 5000)}


@pytest.mark.parametrize(
    "args",
    [
        ("-c", "web=2,worker=0"),
        ("-c", "web=2", "-c", "worker=0"),
        ("--concurrency", "web=2", "--concurrency", "worker=0"),
        ("-c", "worker=0,web=2"),
    ],
)
def test_concurrency_forms(app_dir, args):
    d = app_dir(Procfile=procfile("web", "worker", n=2))
    assert ports(start(d, *args)) == {"web.1": 5000, "web.2": 5001}


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("web", "web"),
        ("web=x", "web=x"),
        ("web=-1", "web=-1"),
        ("web=", "web="),
        ("=2", "=2"),
        ("web=1.5", "web=1.5"),
        ("nope=1", "nope"),
        ("web=1,nope=2", "nope"),
    ],
)
def test_bad_concurrency_is_an_error(app_dir, value, fragment):
    d = app_dir(Procfile="web: sleep 30\nworker: sleep 30\n")
    assert_one_error(run_corral("start", "-c", value, cwd=d), fragment)


def test_unknown_process_name_is_an_error(app_dir):
    d = app_dir(Procfile="web: sleep 30\nworker: sleep 30\n")
    assert_one_error(run_corral("start", "web", "nope", cwd=d), "nope")


def test_everything_scaled_to_zero_is_an_error(app_dir):
    d = app_dir(Procfile="web: sleep 30\nworker: sleep 30\n")
    assert_one_error(run_corral("start", "-c", "web=0,worker=0", cwd=d))


def test_app_root_is_the_children_working_directory(app_dir, tmp_path):
    d = app_dir(
        **{"app/Procfile": 'web: pwd; echo "V=$V"; ls\n', "app/.env": "V=app\n", "app/marker": ""}
    )
    other = tmp_path / "elsewhere"
    other.mkdir()
    r = run_corral("-d", str(d / "app"), "start", "--no-prefix", cwd=other)
    assert r.rc == 0, r
    assert str((d / "app").resolve()) in r.lines, r.out
    assert "V=app" in r.lines and "marker" in r.lines, r.out


def test_children_run_in_the_current_directory_by_default(app_dir):
    d = app_dir(Procfile="web: pwd\n")
    r = run_corral("start", "--no-prefix", cwd=d)
    assert str(d.resolve()) in r.lines, r.out


# -- limits and the release phase ---------------------------------------------------


def test_port_over_65535_is_an_error_naming_the_instance(app_dir, mark):
    d = app_dir(Procfile="web: exec sleep 1234\n")
    r = run_corral("start", "-p", "65535", "-c", "web=2", cwd=d)
    assert_one_error(r, "corral: error: web.2: PORT 65536 is over 65535")
    assert_nothing_left(mark)
    d2 = app_dir(**{"P2": procfile("web", n=2)})
    assert ports(start(d2, "-f", "P2", "-p", "65534", "-c", "web=2")) == {
        "web.1": 65534,
        "web.2": 65535,
    }


@pytest.mark.parametrize("count", ["10001", "99999999999999999999999"])
def test_absurd_concurrency_is_refused_at_once(app_dir, mark, count):
    d = app_dir(Procfile="web: exec sleep 1234\n")
    r = run_corral("start", "-c", f"web={count}", cwd=d, timeout=20)
    assert_one_error(r, "at most 10000 instances of a process type")
    r = run_corral("start", cwd=d, env={"CORRAL_CONCURRENCY": f"web={count}"}, timeout=20)
    assert_one_error(r, "at most 10000 instances of a process type")
    assert_nothing_left(mark)


def test_release_first_keeps_web_on_the_base_port(app_dir):
    # 15 of 81 real Procfiles surveyed list `release` first
    d = app_dir(Procfile="release: " + REPORT.format(n=1) + "\n" + procfile("web", "worker", n=3))
    ids = start(d, "-c", "web=2")
    assert ports(ids) == {"release.1": 5000, "web.1": 5000, "web.2": 5001, "worker.1": 5100}
