"""``nightcrew worker --autoscale MIN:MAX``: the scaling decisions and their hysteresis, and a
real supervisor that grows to MAX worker processes under a backlog and shrinks back to MIN
once the queue is idle."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nightcrew import App
from nightcrew.autoscale import Autoscaler, Load, ScalePolicy, parse_bounds
from tests.faults import apps
from tests.faults.conftest import scalar
from tests.procs import REPO_ROOT, Processes, nightcrew_env, reaped
from tests.support import wait_until

POLICY = ScalePolicy(minimum=1, maximum=4, slots=10, up_age_seconds=5, idle_seconds=30,
                     step_seconds=5)  # fmt: skip
IDLE = Load(0, 0.0)


def test_bounds_parse_and_bad_ones_say_what_is_wrong() -> None:
    assert parse_bounds("1:4") == (1, 4)
    for bad, says in (("4", "MIN:MAX"), ("a:b", "MIN:MAX"), ("0:2", "1 <= MIN"),
                      ("3:1", "MIN <= MAX"), ("-1:2", "MIN:MAX")):  # fmt: skip
        with pytest.raises(ValueError, match=says):
            parse_bounds(bad)


def test_cli_refuses_bad_bounds_with_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "nightcrew", "worker", "--autoscale", "3:1"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "--autoscale: need 1 <= MIN <= MAX, got 3:1" in done.stderr
    assert "Traceback" not in done.stderr


def test_scales_up_on_backlog_beyond_the_slots_one_step_at_a_time() -> None:
    scaler = Autoscaler(POLICY)
    assert scaler.decide(1, Load(11, 0.1), now=0) == 2  # 11 waiting > 1 x 10 slots
    assert scaler.decide(2, Load(50, 0.1), now=1) == 2  # within the step interval: hold
    assert scaler.decide(2, Load(50, 0.1), now=5) == 3
    assert scaler.decide(4, Load(500, 60), now=20) == 4  # never beyond MAX


def test_scales_up_when_the_oldest_job_waited_too_long() -> None:
    scaler = Autoscaler(POLICY)
    assert scaler.decide(2, Load(3, 4.9), now=0) == 2  # few jobs, not old yet: the dead band
    assert scaler.decide(2, Load(3, 5.0), now=1) == 3


def test_scales_down_only_after_a_whole_idle_period_each_step() -> None:
    scaler = Autoscaler(POLICY)
    assert scaler.decide(3, IDLE, now=0) == 3  # idle starts now
    assert scaler.decide(3, IDLE, now=29) == 3
    assert scaler.decide(3, Load(1, 0.1), now=29.5) == 3  # one job waited: idleness restarts
    assert scaler.decide(3, IDLE, now=30) == 3
    assert scaler.decide(3, IDLE, now=59) == 3
    assert scaler.decide(3, IDLE, now=60) == 2
    assert scaler.decide(2, IDLE, now=70) == 2  # the next step needs another idle period
    assert scaler.decide(2, IDLE, now=90) == 1
    assert scaler.decide(1, IDLE, now=500) == 1  # never below MIN


def test_brought_back_within_bounds_at_once() -> None:
    assert Autoscaler(POLICY).decide(0, IDLE, now=0) == 1
    assert Autoscaler(POLICY).decide(6, Load(100, 9), now=0) == 4


def live_workers(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM nightcrew.workers"))


@pytest.mark.slow
def test_supervisor_grows_to_max_under_backlog_and_back_to_min(
    app: App, clean_db: str, tmp_path: Path
) -> None:
    app.registry.update(apps.app.registry)
    env = nightcrew_env(clean_db, {
        "migrate_on_start": False, "autoscale_check_seconds": 0.2,
        "autoscale_up_age_seconds": 0.5, "autoscale_idle_seconds": 1.5,
        "autoscale_step_seconds": 0.3, "shutdown_grace_seconds": 5})  # fmt: skip
    with reaped(Processes(tmp_path, "supervisor", stop_seconds=30)) as procs:
        supervisor = procs.launch(
            "nightcrew", "worker", "--app", "tests.faults.apps:app", "--concurrency", "2",
            "--no-scheduler", "--autoscale", "1:3", env=env,
        )  # fmt: skip
        try:
            wait_until(lambda: live_workers(clean_db) == 1, 30, "MIN workers to start")
            app.enqueue_many([{"type": "faults.sleep", "payload": {"seconds": 0.5}}] * 40)
            wait_until(lambda: live_workers(clean_db) == 3, 30, "MAX workers under the backlog")
            done = "SELECT count(*) FROM nightcrew.jobs WHERE status = 'completed'"
            wait_until(lambda: scalar(clean_db, done) == 40, 60, "the backlog to drain")
            wait_until(lambda: live_workers(clean_db) == 1, 30, "back to MIN once idle")
        finally:
            supervisor.send_signal(signal.SIGTERM)
            supervisor.wait(timeout=30)
    text = procs.log(supervisor)
    assert supervisor.returncode == 0, text[-3000:]
    assert "autoscale: 1 -> 2 workers" in text and "autoscale: 3 -> 2 workers" in text
    assert live_workers(clean_db) == 0  # every child stopped with the supervisor
    assert "Traceback" not in text, text[-3000:]
