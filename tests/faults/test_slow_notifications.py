"""A slow webhook receiver and a stalling mail server, next to a healthy job in a worker
process with a pool of 2: deliveries hold no pool connection while they wait, so the healthy
job keeps its lease (no rescue, no second run), and each delivery gives up at its deadline
and is retried."""

from __future__ import annotations

from pathlib import Path

import psycopg

from nightcrew import App
from tests.faults.conftest import WorkerProcesses, job_status, scalar
from tests.notify.receivers import http_receiver, smtp_server
from tests.support import wait_until

SLOW_ANSWER_SECONDS = 8  # the receivers' delay: past the deadline, within socket timeouts
DEADLINE_SECONDS = 1.5


def runs_logged(out: Path) -> list[str]:
    """Every run of ``faults.record`` so far, one line each."""
    return [line for log in out.glob("*.log") for line in log.read_text().splitlines()]


def test_slow_receivers_do_not_starve_a_healthy_job(
    producer: App, clean_db: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    out = tmp_path / "runs"
    out.mkdir()
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.deliveries")
    with smtp_server() as (box, smtp_port), http_receiver() as receiver:
        box.stall = receiver.delay = SLOW_ANSWER_SECONDS
        worker = workers.start(
            clean_db, concurrency=4, pool_min_size=1, pool_max_size=2,
            maintenance_schedules="false", notify_timeout_seconds=DEADLINE_SECONDS,
            notify_backoff_seconds=0.2, webhook_secret="k", webhook_allow_private="true",
            smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="none",
        )  # fmt: skip
        # Another worker (of a queue with no jobs): it rescues any lease left to expire.
        rescuer = workers.start(clean_db, queues="spare", maintenance_schedules="false")
        workers.wait_registered(clean_db, worker)
        workers.wait_registered(clean_db, rescuer)

        healthy = producer.enqueue("faults.record", {"out": str(out), "sleep": 5})
        wait_until(lambda: job_status(clean_db, healthy) == "processing", 20, "healthy to run")
        notify = {"webhook": receiver.url, "email": "ops@example.com"}
        for _ in range(2):  # two deliveries at once: as many as the pool has connections
            producer.enqueue("faults.sleep", {"seconds": 0}, notify=notify)

        def healthy_finished_without_losing_its_lease() -> bool:
            errors = scalar(clean_db, "SELECT errors FROM nightcrew.jobs WHERE id = %s",
                            (healthy,))  # fmt: skip
            assert errors == [], f"the healthy job was rescued: {errors}"
            return job_status(clean_db, healthy) == "completed"

        wait_until(healthy_finished_without_losing_its_lease, 40, "the healthy job to finish")
        assert len(runs_logged(out)) == 1, runs_logged(out)  # run once, never twice

        def every_delivery_retried_after_its_deadline() -> bool:
            with psycopg.connect(clean_db, autocommit=True) as conn:
                rows = conn.execute(
                    "SELECT attempts, last_error FROM nightcrew.deliveries"
                ).fetchall()
            return len(rows) == 4 and all(
                attempts >= 2 and "no answer within notify_timeout_seconds" in (error or "")
                for attempts, error in rows
            )

        wait_until(every_delivery_retried_after_its_deadline, 30, "deliveries to be retried")
        assert len(receiver.requests) >= 4 and box.stalled >= 4  # each retried, not dropped
