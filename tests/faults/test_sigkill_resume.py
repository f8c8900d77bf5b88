"""A worker SIGKILLed in the middle of a batched job: a live worker rescues the job once its
lease expires, the job resumes from its checkpoint, and every row is changed exactly once."""

from __future__ import annotations

import signal

import psycopg

from nightcrew import App, JobStatus
from tests.faults.conftest import WorkerProcesses, job_status, scalar
from tests.support import wait_until

ROWS = 500
BATCH = 50


def make_table(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS fault_rows")
        conn.execute(
            "CREATE TABLE fault_rows (id int PRIMARY KEY, value int NOT NULL,"
            " touched int NOT NULL DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO fault_rows (id, value) SELECT i, i * 3 FROM generate_series(0, %s) i",
            (ROWS - 1,),
        )


def test_killed_worker_job_resumes_from_checkpoint_exactly_once(
    producer: App, clean_db: str, workers: WorkerProcesses
) -> None:
    make_table(clean_db)
    victim = workers.start(clean_db, concurrency=1)
    workers.wait_registered(clean_db, victim)
    payload = {"table": "fault_rows", "rows": ROWS, "batch_size": BATCH, "pause": 0.15}
    job_id = producer.enqueue("faults.batched", payload)

    def checkpoint() -> int:
        statement = "SELECT checkpoint->>'next_batch' FROM nightcrew.jobs WHERE id = %s"
        return int(scalar(clean_db, statement, (job_id,)) or 0)

    wait_until(lambda: checkpoint() >= 4, 20, "the victim to commit 4 batches")
    workers.signal(victim, signal.SIGKILL)
    victim.wait(timeout=10)
    assert checkpoint() < ROWS // BATCH, "the job finished before it could be killed"

    rescuer = workers.start(clean_db, concurrency=1)
    wait_until(lambda: job_status(clean_db, job_id) == "completed", 30, "the rescue to finish")

    job = producer.get_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED
    assert job.attempts == 2
    # The second attempt started after the last batch the victim committed, not from 0.
    assert job.result["pid"] == rescuer.pid
    assert 4 <= job.result["resumed_from"] < ROWS // BATCH
    assert job.checkpoint == {"next_batch": ROWS // BATCH}
    assert [e["type"] for e in job.errors] == ["LeaseExpired"]
    assert job.errors[0]["attempt"] == 1
    assert f"-{victim.pid}-" in job.errors[0]["message"]
    with psycopg.connect(clean_db) as conn:
        wrong = conn.execute(
            "SELECT count(*) FROM fault_rows WHERE touched <> 1 OR value <> id * 3 + 10"
        ).fetchone()
        total = conn.execute("SELECT count(*) FROM fault_rows").fetchone()
    assert wrong == (0,) and total == (ROWS,)
