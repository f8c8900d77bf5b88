"""The database goes away under a running worker: the server restarts, or the worker's
connections are terminated. The worker reconnects by itself and no job is lost.

The restart uses a private embedded PostgreSQL (the shared test server must stay up for
everyone else); backend termination only touches the test database's own connections.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nightcrew import App
from nightcrew.db import embedded
from nightcrew.db.migrate import migrate
from tests.faults import apps
from tests.faults.conftest import OURS, WorkerProcesses, count_jobs, scalar
from tests.support import wait_until


@pytest.fixture
def private_server() -> Iterator[tuple[Path, str]]:
    """A private embedded PostgreSQL (data dir, URL) with the schema; stopped afterwards."""
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-faults-"))
    base.chmod(0o755)  # as root, embedded.start refuses private parents
    data_dir = base / "pg"
    try:
        url = embedded.start(data_dir)
        migrate(url)
        yield data_dir, url
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(base, ignore_errors=True)


def enqueue_sleeps(url: str, count: int, seconds: float) -> list[str]:
    """Enqueue on a fresh connection (pooled ones may have been cut off by the test)."""
    producer = App(url, migrate_on_start=False)
    producer.registry.update(apps.app.registry)
    items = [{"type": "faults.sleep", "payload": {"seconds": seconds}} for _ in range(count)]
    with psycopg.connect(url, autocommit=True) as conn:
        return [str(i) for i in producer.enqueue_many(items, conn=conn)]


def all_completed(url: str, total: int) -> bool:
    return count_jobs(url, "completed") == total


def test_worker_reconnects_after_postgres_restart(
    private_server: tuple[Path, str], workers: WorkerProcesses
) -> None:
    data_dir, url = private_server
    proc = workers.start(url, concurrency=4)
    workers.wait_registered(url, proc)
    enqueue_sleeps(url, 20, 0.01)
    wait_until(lambda: all_completed(url, 20), 15, "the jobs before the restart")

    # Two jobs are running when the server goes down.
    enqueue_sleeps(url, 2, 1.0)
    wait_until(lambda: count_jobs(url, "processing") == 2, 10, "jobs to start")
    assert embedded.stop(data_dir)
    wait_until(lambda: "failed" in workers.log(proc), 15, "the worker to notice the outage")
    # Stay down longer than a lease: when the server is back, the running jobs' buffered
    # outcomes race their own rescue; whichever wins, each job must end completed once.
    time.sleep(2.5)
    assert proc.poll() is None, "the worker died with the database"
    restarted = time.monotonic()
    assert embedded.start(data_dir) == url

    after = enqueue_sleeps(url, 20, 0.01)
    wait_until(lambda: all_completed(url, 42), 30, "every job after the restart")
    print(f"all jobs done {time.monotonic() - restarted:.1f}s after the restart")
    assert proc.poll() is None
    assert scalar(url, f"SELECT count(*) FROM nightcrew.jobs WHERE {OURS}") == 42
    ran_by = scalar(
        url, "SELECT array_agg(DISTINCT (result->>'pid')::int) FROM nightcrew.jobs"
        " WHERE id = ANY(%s::uuid[])", (after,),
    )  # fmt: skip
    assert ran_by == [proc.pid]
    print(
        "attempts of the jobs cut off:",
        scalar(
            url, f"SELECT array_agg(attempts) FROM nightcrew.jobs WHERE {OURS} AND attempts > 1"
        ),
    )


def test_worker_survives_terminated_backends(clean_db: str, workers: WorkerProcesses) -> None:
    proc = workers.start(clean_db, concurrency=8)
    workers.wait_registered(clean_db, proc)
    enqueue_sleeps(clean_db, 400, 0.05)  # at least 2.5 s of work for 8 slots
    # Only this test database's connections: other engineers share the server.
    theirs = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    terminate = f"SELECT count(pg_terminate_backend(pid)) {theirs}"
    connected = f"SELECT count(*) {theirs}"
    killed: list[int] = []
    for _ in range(5):
        done_before_last = count_jobs(clean_db, "completed")
        assert done_before_last < 400, "work ran out too soon"
        killed.append(scalar(clean_db, terminate))
        wait_until(lambda: scalar(clean_db, connected) > 0, 10, "the worker to reconnect")
        time.sleep(0.2)  # let it work a little before cutting it off again
    assert all(n > 0 for n in killed), f"nothing to terminate in some rounds: {killed}"
    assert proc.poll() is None

    enqueue_sleeps(clean_db, 50, 0.01)
    wait_until(lambda: all_completed(clean_db, 450), 30, "every job to complete")
    assert proc.poll() is None
    assert scalar(clean_db, f"SELECT count(*) FROM nightcrew.jobs WHERE {OURS}") == 450
    most = scalar(clean_db, f"SELECT max(attempts) FROM nightcrew.jobs WHERE {OURS}")
    print(f"terminated backends per round: {killed}; completed before the last round: "
          f"{done_before_last}; most attempts: {most}")  # fmt: skip
