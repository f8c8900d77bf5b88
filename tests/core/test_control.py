"""Operator controls: retry refuses to duplicate a job whose dedupe key is live again."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from nightcrew import App, JobContext, JobStatus, keys
from nightcrew.http.session import acting
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
            outcome.append(control.retry(conn, first).outcome)
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
    assert outcome == [control.Outcome.DEDUPE_HELD, (1,)]
    assert app.get_job(first).status is JobStatus.FAILED  # type: ignore[union-attr]


def test_each_job_asked_for_gets_a_typed_result(app: App) -> None:
    @app.job("t.noop")
    def noop(ctx: JobContext, payload: Any) -> None:
        return None

    waiting, running, done = app.enqueue_many([{"type": "t.noop"}] * 3)
    with psycopg.connect(app.url, autocommit=True) as conn:
        conn.execute("UPDATE nightcrew.jobs SET status = 'processing' WHERE id = %s", (running,))
        conn.execute("UPDATE nightcrew.jobs SET status = 'completed' WHERE id = %s", (done,))
        assert control.cancel(conn, waiting) == control.ControlResult(
            waiting, control.Outcome.DONE, JobStatus.PENDING
        )
        flagged = control.cancel(conn, running)
        assert flagged.done and flagged.status is JobStatus.PROCESSING
        again = control.cancel(conn, running)  # already asked to stop
        assert again.outcome is control.Outcome.WRONG_STATE and not again
        finished = control.cancel(conn, done)
        assert (finished.outcome, finished.status) == (
            control.Outcome.WRONG_STATE, JobStatus.COMPLETED)  # fmt: skip
        unknown = control.retry(conn, "01a00000-0000-7000-8000-000000000000")
        assert unknown.outcome is control.Outcome.NOT_FOUND
        assert control.retry(conn, "not-a-uuid") == control.ControlResult(
            None, control.Outcome.NOT_FOUND
        )
        assert control.retry(conn, waiting).done  # cancelled above: back to pending
        # Without an actor nothing is audited.
        assert conn.execute("SELECT count(*) FROM nightcrew.audit_log").fetchone() == (0,)


async def test_bulk_actions_audit_in_the_same_statement_and_explain_the_rest(aapp: App) -> None:
    @aapp.job("t.noop")
    async def noop(ctx: JobContext, payload: Any) -> None:
        return None

    first, second = await aapp.aenqueue_many([{"type": "t.noop"}] * 2)
    missing = "01a00000-0000-7000-8000-000000000000"
    pool = await aapp.apool()
    async with pool.connection() as conn, conn.transaction():
        results = await control.acancel_jobs(conn, ids=[first, missing], actor="ops")
        assert {(str(r.job_id), r.outcome) for r in results} == {
            (str(first), control.Outcome.DONE), (missing, control.Outcome.NOT_FOUND)}  # fmt: skip
        await conn.execute("UPDATE nightcrew.jobs SET status = 'failed' WHERE id = %s", (second,))
        discarded = await control.adiscard_jobs(conn, ids=[first, second], actor="ops")
        assert {(r.job_id, r.outcome) for r in discarded} == {
            (first, control.Outcome.WRONG_STATE), (second, control.Outcome.DONE)}  # fmt: skip
        cur = await conn.execute(
            "SELECT actor, action, target FROM nightcrew.audit_log ORDER BY id"
        )
        assert await cur.fetchall() == [
            ("ops", "job.cancel", str(first)), ("ops", "job.discard", str(second))]  # fmt: skip
    assert await aapp.aget_job(second) is None and await aapp.aget_job(first) is not None


async def test_discard_under_the_api_role_deletes_and_acts_as_that_role_again(
    aapp: App,
) -> None:
    @aapp.job("t.noop")
    async def noop(ctx: JobContext, payload: Any) -> None:
        return None

    mine = await aapp.aenqueue("t.noop", {}, user_id="alice")
    theirs = await aapp.aenqueue("t.noop", {}, user_id="bob")
    with aapp.pool().connection() as conn:
        conn.execute(
            "UPDATE nightcrew.jobs SET status = 'failed' WHERE id = ANY(%s)", ([mine, theirs],)
        )
        _, secret = keys.create_key(conn, "alice")
    async with acting(aapp, secret) as session:
        results = await control.adiscard_jobs(session.conn, ids=[mine, theirs], actor="alice")
        cur = await session.conn.execute("SELECT current_user::text")
        role = await cur.fetchone()
    assert {(r.job_id, r.outcome) for r in results} == {
        (mine, control.Outcome.DONE), (theirs, control.Outcome.NOT_FOUND)}  # fmt: skip
    assert role == ("nightcrew_api",)  # row-level security applies again after the delete
    assert await aapp.aget_job(mine) is None and await aapp.aget_job(theirs) is not None
