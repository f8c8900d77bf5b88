"""Fault-test fixtures: worker processes that are always reaped, and small DB helpers."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nightcrew import App
from tests.faults import apps
from tests.procs import FAST_WORKER, Processes, nightcrew_env, reaped
from tests.support import wait_until

# Short leases so that a lost worker is noticed within a couple of seconds.
FAST_SETTINGS = {**FAST_WORKER, "shutdown_grace_seconds": 5}


def scalar(url: str, statement: str, params: Any = None) -> Any:
    """The first column of the first row of ``statement``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]


def job_status(url: str, job_id: object) -> str | None:
    """The job's status, read on a fresh connection."""
    status = scalar(url, "SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job_id,))
    return None if status is None else str(status)


# The fault tests' own jobs, not the maintenance jobs the worker's scheduler enqueues.
OURS = "starts_with(type, 'faults.')"


def count_jobs(url: str, status: str) -> int:
    """How many of the fault tests' jobs are in ``status``, read on a fresh connection."""
    statement = f"SELECT count(*) FROM nightcrew.jobs WHERE {OURS} AND status::text = %s"
    return int(scalar(url, statement, (status,)))


class WorkerProcesses(Processes):
    """Starts ``python -m nightcrew worker`` processes on ``tests.faults.apps:app``."""

    def start(
        self, url: str, *, concurrency: int = 4, queues: str | None = None, **settings: Any
    ) -> subprocess.Popen[bytes]:
        """Start a worker (of ``queues``, comma-separated: default all); ``settings``
        override :data:`FAST_SETTINGS` (as NIGHTCREW_* vars)."""
        return self.launch(
            "nightcrew", "worker", "--app", "tests.faults.apps:app",
            "--concurrency", str(concurrency), *(["--queues", queues] if queues else []),
            env=nightcrew_env(url, {**FAST_SETTINGS, **settings}),
        )  # fmt: skip

    def wait_registered(self, url: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
        """Wait until the worker process has registered itself in ``nightcrew.workers``."""

        def registered() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}:\n{self.log(proc)}")
            return bool(scalar(url, "SELECT count(*) FROM nightcrew.workers WHERE pid = %s",
                               (proc.pid,)))  # fmt: skip

        wait_until(registered, timeout, f"worker {proc.pid} to register")

    def signal(self, proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        """Send ``sig`` to one worker."""
        os.kill(proc.pid, sig)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Worker processes, all killed and reaped at teardown (their logs printed)."""
    with reaped(WorkerProcesses(tmp_path), tail=4000) as procs:
        yield procs


@pytest.fixture
def producer(app: App) -> App:
    """The test App with the job types of :mod:`tests.faults.apps` (same defaults)."""
    app.registry.update(apps.app.registry)
    return app
