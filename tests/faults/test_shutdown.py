"""Graceful shutdown: on SIGTERM a worker lets jobs finish within the grace period and gives
the unfinished ones back to the queue without burning an attempt."""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path

from nightcrew import App, JobStatus
from tests.faults.conftest import WorkerProcesses, count_jobs, job_status, scalar
from tests.support import wait_until


def test_sigterm_finishes_short_jobs_and_releases_long_ones(
    producer: App, clean_db: str, workers: WorkerProcesses
) -> None:
    proc = workers.start(clean_db, concurrency=2, shutdown_grace_seconds=1)
    workers.wait_registered(clean_db, proc)
    long_id = producer.enqueue("faults.sleep", {"seconds": 30})
    short_id = producer.enqueue("faults.sleep", {"seconds": 0.4})
    wait_until(lambda: count_jobs(clean_db, "processing") == 2, 10, "both jobs to start")
    signalled = time.monotonic()
    workers.signal(proc, signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    took = time.monotonic() - signalled
    assert took < 4, f"shutdown with a 1 s grace took {took:.1f}s"

    short = producer.get_job(short_id)
    assert short is not None and short.status is JobStatus.COMPLETED
    assert short.attempts == 1 and short.result == {"pid": proc.pid}
    long = producer.get_job(long_id)
    assert long is not None
    assert long.status is JobStatus.PENDING
    assert long.attempts == 0, "the interrupted attempt was burned"
    assert long.errors == [] and long.worker_id is None and long.lease_expires_at is None
    registered = "SELECT count(*) FROM nightcrew.workers WHERE pid = %s"
    assert scalar(clean_db, registered, (proc.pid,)) == 0, "the worker did not deregister"


def test_sync_handler_past_grace_never_runs_twice_at_once(
    producer: App, clean_db: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    first = workers.start(clean_db, concurrency=1, shutdown_grace_seconds=1)
    workers.wait_registered(clean_db, first)
    job_id = producer.enqueue("faults.sync_record", {"sleep": 3, "out": str(out)})
    wait_until(lambda: job_status(clean_db, job_id) == "processing", 10, "the job to start")
    second = workers.start(clean_db, concurrency=1)
    workers.wait_registered(clean_db, second)
    workers.signal(first, signal.SIGTERM)
    wait_until(lambda: job_status(clean_db, job_id) == "completed", 15, "the job to complete")
    first.wait(timeout=10)
    runs = sorted(
        (float(start), float(end), int(pid))
        for log in out.iterdir()
        for _job, pid, start, end in (line.split() for line in log.read_text().splitlines())
    )
    overlapping = [(a, b) for a, b in itertools.pairwise(runs) if a[1] > b[0]]
    assert not overlapping, f"the job ran on two workers at once: {overlapping}"
