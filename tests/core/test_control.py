"""Operator controls: retry refuses to duplicate a job whose dedupe key is live again."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from nightcrew import App, JobContext, JobStatus
from nightcrew.lifecycle import control
from tests.support import wait_until


async def test_retry_is_refused_while_a_live_job_holds_the_dedupe_key(aapp: App) -> None:
    @aapp.job("t.flaky", max_attempts=1)
    async def flaky(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("down")

    first = await aapp.aenqueue("t.flaky", {}, dedupe_key="report-7")
    await aapp.worker().run_until_idle()
    assert (await aapp.aget_job(first)).status is JobStatus.FAILED  # type: ignore[union-attr]
    second = await aapp.aenqueue("t.flaky", {}, dedupe_key="report-7", delay=3600)
    assert second != first  # the key was free again, so a new job took it

    assert not await aapp.aretry(first)  # no UniqueViolation: a clear "no"
    assert not aapp.retry(first)  # the sync path too
    assert (await aapp.aget_job(first)).status is JobStatus.FAILED  # type: ignore[union-attr]

    assert await aapp.acancel(second)  # the key is free again: now the retry goes through
    assert await aapp.aretry(first)
    assert (await aapp.aget_job(first)).status is JobStatus.PENDING  # type: ignore[union-attr]


def test_losing_the_race_to_a_concurrent_enqueue_keeps_the_transaction(app: App) -> None:
    @app.job("t.flaky", max_attempts=1)
    def flaky(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError("down")

    first = app.enqueue("t.flaky", {}, dedupe_key="race")
    url = app.url
    with psycopg.connect(url, autocommit=True) as conn:  # as if it had run and failed
        conn.execute(
            "UPDATE nightcrew.jobs SET status = 'failed', completed_at = now() WHERE id = %s",
            (first,),
        )
    # Another transaction takes the key but has not committed: the retry's NOT EXISTS
    # cannot see it, so its UPDATE waits on the unique index and fails once that commits.
    holder = psycopg.connect(url)
    holder.execute(
        "INSERT INTO nightcrew.jobs (id, type, queue, dedupe_key) "
        "VALUES (gen_random_uuid(), 't.flaky', 'default', 'race')"
    )
    outcome: list[object] = []
    pids: list[int] = []

    def retry_in_transaction() -> None:
        with psycopg.connect(url) as conn, conn.transaction():
            pids.append(conn.info.backend_pid)
            outcome.append(control.retry(conn, first))
            # The caller's transaction is still usable after the refused retry.
            outcome.append(conn.execute("SELECT 1").fetchone())

    thread = threading.Thread(target=retry_in_transaction)
    thread.start()
    with psycopg.connect(url, autocommit=True) as watch:
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s"
        wait_until(
            lambda: pids and watch.execute(waiting, (pids[0],)).fetchone() == (1,),
            10,
            "the retry to wait on the uncommitted holder of the key",
        )
    holder.commit()
    holder.close()
    thread.join(10)
    assert outcome == [False, (1,)]
    assert app.get_job(first).status is JobStatus.FAILED  # type: ignore[union-attr]
