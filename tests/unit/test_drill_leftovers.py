"""The drills' sweep (drills/leftovers.py): what a killed drill left behind is cleared at the
next start, and what belongs to a drill still running is left alone.

Real processes stand in for a killed drill's worker and PgBouncer; no database is needed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills import leftovers
from tests.support import wait_until


@pytest.fixture
def tmp_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The drills' directories go under ``tmp_path`` (not the machine's temporary
    directory, where real drills may be running)."""
    monkeypatch.setattr(leftovers, "base_dir", lambda: tmp_path)
    return tmp_path


@pytest.fixture
def dead_owner() -> str:
    """The owner identity of a process that has ended (a drill killed with SIGKILL)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    who = f"{proc.pid}:{leftovers._start_time(proc.pid)}"
    proc.kill()
    proc.wait()
    assert not leftovers.alive(who)
    return who


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes started by the test, killed at its end whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def sleeper(
    started: list[subprocess.Popen[bytes]], owner: str, tag: str
) -> subprocess.Popen[bytes]:
    """A long sleep with ``tag`` on its command line, carrying ``DRILL_OWNER=owner`` unless
    ``owner`` is empty."""
    env = {k: v for k, v in os.environ.items() if k != leftovers.OWNER_ENV}
    if owner:
        env[leftovers.OWNER_ENV] = owner
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", tag], env=env)
    started.append(proc)
    return proc


def test_owner_is_alive_while_it_runs() -> None:
    assert leftovers.alive(leftovers.owner())
    assert not leftovers.alive(f"{os.getpid()}:0")  # our pid, but not our start: reused
    assert not leftovers.alive("")


def test_sweep_clears_a_dead_drills_directory_and_processes(
    tmp_base: Path, dead_owner: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    left = tmp_base / "nightcrew-drill-pgbouncer-left"
    left.mkdir()
    (left / leftovers.OWNER_FILE).write_text(dead_owner)
    # A "PgBouncer" started from that directory (its pid file names it) and a "worker".
    bouncer = sleeper(sleepers, "", str(left / "pgbouncer.ini"))
    (left / "pgbouncer.pid").write_text(f"{bouncer.pid}\n")
    worker = sleeper(sleepers, dead_owner, "worker")

    removed = leftovers.sweep()

    wait_until(lambda: bouncer.poll() is not None and worker.poll() is not None, timeout=10)
    assert not left.exists()
    assert left.name in removed and f"process {worker.pid}" in removed


def test_sweep_leaves_a_running_drill_alone(
    tmp_base: Path, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    mine = leftovers.owned_dir("pg")  # owned by this (running) process
    worker = sleeper(sleepers, leftovers.owner(), "worker")
    unowned = tmp_base / "nightcrew-drill-logs-x"  # no owner file: not ours to judge
    unowned.mkdir()

    removed = leftovers.sweep()
    assert mine.name not in removed and unowned.name not in removed
    assert mine.exists() and unowned.exists() and worker.poll() is None


def test_a_stale_pid_file_does_not_kill_an_unrelated_process(
    tmp_base: Path, dead_owner: str, sleepers: list[subprocess.Popen[bytes]]
) -> None:
    left = tmp_base / "nightcrew-drill-pg-stale"
    (left / "data").mkdir(parents=True)
    (left / leftovers.OWNER_FILE).write_text(dead_owner)
    other = sleeper(sleepers, "", "unrelated")  # took the pid the file names, say
    (left / "data" / "postmaster.pid").write_text(f"{other.pid}\n")
    bouncer = sleeper(sleepers, "", str(left / "pgbouncer.ini"))  # a real leftover beside it
    (left / "pgbouncer.pid").write_text(f"{bouncer.pid}\n")

    leftovers.sweep()

    wait_until(lambda: bouncer.poll() is not None, timeout=10)  # the sweep's kills landed
    assert not left.exists()
    assert other.poll() is None
