"""Two worker processes over 10,000 jobs: every job runs exactly once, never on both at the
same time, and none is lost."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

from nightcrew import App
from tests.faults.conftest import OURS, WorkerProcesses, count_jobs, scalar
from tests.support import wait_until

JOBS = 10_000


def overlaps(spans: list[tuple[int, float, float]]) -> bool:
    """Whether any two (pid, start, end) runs of one job were in progress at the same time."""
    ordered = sorted(spans, key=lambda span: span[1])
    return any(a[2] > b[1] for a, b in itertools.pairwise(ordered))


@pytest.mark.slow
def test_two_workers_run_each_job_exactly_once(
    producer: App, clean_db: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    procs = [workers.start(clean_db, concurrency=20) for _ in range(2)]
    for proc in procs:
        workers.wait_registered(clean_db, proc)
    ids = producer.enqueue_many(
        {"type": "faults.record", "payload": {"out": str(out)}} for _ in range(JOBS)
    )
    begin = time.monotonic()
    try:
        wait_until(lambda: count_jobs(clean_db, "completed") == JOBS, 60, f"{JOBS} jobs to finish")
    except AssertionError as exc:
        by_status = f"SELECT status, count(*) n FROM nightcrew.jobs WHERE {OURS} GROUP BY status"
        statuses = scalar(clean_db, f"SELECT json_object_agg(status, n) FROM ({by_status}) c")
        raise AssertionError(f"{exc}; jobs by status: {statuses}") from None
    took = time.monotonic() - begin
    print(f"{JOBS} jobs on 2 workers in {took:.1f}s ({JOBS / took:.0f} jobs/s)")

    with psycopg.connect(clean_db) as conn:
        attempts = conn.execute(
            f"SELECT attempts, count(*) FROM nightcrew.jobs WHERE {OURS} GROUP BY attempts"
        ).fetchall()
    assert attempts == [(1, JOBS)]

    runs: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    per_worker: dict[int, int] = defaultdict(int)
    for log in out.iterdir():
        for line in log.read_text().splitlines():
            job_id, pid, start, end = line.split()
            runs[job_id].append((int(pid), float(start), float(end)))
            per_worker[int(pid)] += 1
    assert set(runs) == {str(i) for i in ids}, "some jobs never ran"
    repeated = {job: spans for job, spans in runs.items() if len(spans) > 1}
    overlapping = {job: spans for job, spans in repeated.items() if overlaps(spans)}
    assert not overlapping, f"jobs ran on two workers at once: {list(overlapping.items())[:5]}"
    assert not repeated, f"jobs ran more than once: {list(repeated.items())[:5]}"
    assert set(per_worker) == {p.pid for p in procs}, "one worker did all the work"
    print(f"jobs per worker: {dict(per_worker)}")
