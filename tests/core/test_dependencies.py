"""Job dependencies: fan-out and fan-in decided in the database (docs/flows.md)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest

from nightcrew import App, EnqueueError, FanOut, JobContext, JobStatus, ParentJob
from nightcrew.queries import query
from nightcrew.scheduler.maintenance import prune


def register(app: App, ran: list[UUID] | None = None) -> None:
    """Job types of these tests: ``t.ok`` returns its payload, ``t.fail`` always fails."""

    @app.job("t.ok", max_attempts=1)
    async def ok(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        if ran is not None:
            ran.append(ctx.job.id)
        return payload

    @app.job("t.fail", max_attempts=1)
    async def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError(f"boom {payload.get('n', '')}".strip())


def job(app: App, job_id: UUID) -> Any:
    found = app.get_job(job_id)
    assert found is not None
    return found


async def test_a_dependent_waits_until_every_parent_completed(aapp: App) -> None:
    ran: list[UUID] = []
    register(aapp, ran)
    parents = [await aapp.aenqueue("t.ok", {"n": n}) for n in range(3)]
    then = await aapp.aenqueue("t.ok", {"then": True}, depends_on=[str(parents[0]), *parents[1:]])
    waiting = job(aapp, then)
    assert waiting.depends_on == sorted(parents)
    assert waiting.pending_parents == 3 and waiting.on_parent_failure == "cancel"
    assert waiting.to_dict()["depends_on"] == [str(p) for p in sorted(parents)]

    await aapp.worker(concurrency=5).run_until_idle()
    done = job(aapp, then)
    assert done.status is JobStatus.COMPLETED and done.pending_parents == 0
    assert ran[-1] == then and ran.count(then) == 1
    assert done.started_at is not None
    for parent in parents:
        completed_at = job(aapp, parent).completed_at
        assert completed_at is not None and completed_at <= done.started_at


async def test_a_failed_parent_cancels_its_dependents_down_the_graph(aapp: App) -> None:
    ran: list[UUID] = []
    register(aapp, ran)
    good = await aapp.aenqueue("t.ok", {})
    bad = await aapp.aenqueue("t.fail", {})
    child = await aapp.aenqueue("t.ok", {}, depends_on=[good, bad])
    grandchild = await aapp.aenqueue("t.ok", {}, depends_on=[child])
    await aapp.worker(concurrency=2).run_until_idle()

    assert job(aapp, bad).status is JobStatus.FAILED
    cancelled = job(aapp, child)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.error == f"parent job {bad} (t.fail) ended failed"
    below = job(aapp, grandchild)
    assert below.status is JobStatus.CANCELLED
    assert below.error == f"parent job {child} (t.ok) ended cancelled"
    assert child not in ran and grandchild not in ran


async def test_run_mode_runs_after_a_failed_parent_and_sees_it_in_ctx_parents(aapp: App) -> None:
    register(aapp)
    seen: list[list[ParentJob]] = []

    @aapp.job("t.report", max_attempts=1)
    def report(ctx: Any, payload: dict[str, Any]) -> str:
        seen.append(ctx.parents.all())  # a plain def handler: SyncJobContext
        return "reported"

    good = await aapp.aenqueue("t.ok", {"value": 42})
    bad = await aapp.aenqueue("t.fail", {"n": 7})
    then = await aapp.aenqueue("t.report", {}, depends_on=[bad, good], on_parent_failure="run")
    await aapp.worker(concurrency=2).run_until_idle()

    assert job(aapp, then).status is JobStatus.COMPLETED
    assert len(seen) == 1
    by_id = {parent.id: parent for parent in seen[0]}
    assert by_id[good] == ParentJob(good, "t.ok", JobStatus.COMPLETED, {"value": 42}, None)
    assert by_id[bad] == ParentJob(bad, "t.fail", JobStatus.FAILED, None, "boom 7")


async def test_ctx_parents_is_empty_without_dependencies(aapp: App) -> None:
    seen: list[list[ParentJob]] = []

    @aapp.job("t.plain")
    async def plain(ctx: JobContext, payload: dict[str, Any]) -> None:
        assert len(ctx.parents) == 0 and not ctx.parents and not ctx.job.has_parents
        assert (await ctx.parents.summary()).total == 0
        seen.append(await ctx.parents.all())

    await aapp.aenqueue("t.plain", {})
    await aapp.worker().run_until_idle()
    assert seen == [[]]


async def test_a_parent_that_already_ended_counts_as_ended(aapp: App) -> None:
    register(aapp)
    good = await aapp.aenqueue("t.ok", {})
    bad = await aapp.aenqueue("t.fail", {})
    await aapp.worker().run_until_idle()

    runnable = await aapp.aenqueue("t.ok", {}, depends_on=[good])
    assert job(aapp, runnable).pending_parents == 0
    cancelled = job(aapp, await aapp.aenqueue("t.ok", {}, depends_on=[good, bad]))
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.error == f"parent job {bad} (t.fail) ended failed"
    anyway = await aapp.aenqueue("t.ok", {}, depends_on=[bad], on_parent_failure="run")
    await aapp.worker().run_until_idle()
    assert job(aapp, runnable).status is JobStatus.COMPLETED
    assert job(aapp, anyway).status is JobStatus.COMPLETED


async def test_a_parent_retried_by_hand_does_not_run_its_dependents_twice(aapp: App) -> None:
    ran: list[UUID] = []
    register(aapp, ran)
    attempts: list[int] = []

    @aapp.job("t.second_time", max_attempts=1)
    async def second_time(ctx: JobContext, payload: dict[str, Any]) -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first run fails")

    parent = await aapp.aenqueue("t.second_time", {})
    other = await aapp.aenqueue("t.ok", {}, run_at=None, delay=3600)  # never ends here
    runs = await aapp.aenqueue("t.ok", {}, depends_on=[parent], on_parent_failure="run")
    waits = await aapp.aenqueue("t.ok", {}, depends_on=[parent, other], on_parent_failure="run")
    cancelled = await aapp.aenqueue("t.ok", {}, depends_on=[parent])
    await aapp.worker().run_until_idle()
    assert job(aapp, parent).status is JobStatus.FAILED
    assert ran.count(runs) == 1 and job(aapp, waits).pending_parents == 1

    assert await aapp.aretry(parent)
    await aapp.worker().run_until_idle()
    assert job(aapp, parent).status is JobStatus.COMPLETED
    assert ran.count(runs) == 1
    # Still waiting for `other` only: the parent's second ending was not counted again.
    assert job(aapp, waits).pending_parents == 1 and waits not in ran
    assert job(aapp, cancelled).status is JobStatus.CANCELLED


async def test_cancelling_a_waiting_parent_cancels_its_dependents(aapp: App) -> None:
    register(aapp)
    parent = await aapp.aenqueue("t.ok", {}, delay=3600)
    child = await aapp.aenqueue("t.ok", {}, depends_on=[parent])
    assert await aapp.acancel(parent)
    found = job(aapp, child)
    assert found.status is JobStatus.CANCELLED
    assert found.error == f"parent job {parent} (t.ok) ended cancelled"


# ---- refusals ----------------------------------------------------------------------------


async def test_an_unknown_parent_is_refused_and_nothing_is_written(aapp: App) -> None:
    register(aapp)
    known = await aapp.aenqueue("t.ok", {})
    missing = uuid4()
    with pytest.raises(EnqueueError, match=f"depends_on: no job {missing}") as raised:
        await aapp.aenqueue("t.ok", {"x": 1}, depends_on=[known, missing])
    assert raised.value.field == "depends_on"
    with pytest.raises(EnqueueError, match="depends_on") as raised:
        aapp.enqueue_many([{"type": "t.ok"}, {"type": "t.ok", "depends_on": [missing]}])
    assert raised.value.field == "depends_on"
    assert [j.id for j in aapp.list_jobs()] == [known]


def test_refusals_inside_the_callers_transaction_leave_it_usable(app: App) -> None:
    register(app)
    with psycopg.connect(app.url, autocommit=True) as conn, conn.transaction():
        first = app.enqueue("t.ok", {}, conn=conn)
        with pytest.raises(EnqueueError):
            app.enqueue("t.ok", {}, depends_on=[uuid4()], conn=conn)
        second = app.enqueue("t.ok", {}, depends_on=[first], conn=conn)
    assert job(app, second).pending_parents == 1


@pytest.mark.parametrize(
    ("depends_on", "message"),
    [
        ("not-a-list", "depends_on must be a list of job ids"),
        (["nope"], "depends_on: 'nope' is not a job id"),
        ([42], "depends_on: 42 is not a job id"),
    ],
)
def test_malformed_depends_on_is_refused(app: App, depends_on: Any, message: str) -> None:
    register(app)
    with pytest.raises(EnqueueError, match=message) as raised:
        app.enqueue("t.ok", {}, depends_on=depends_on)
    assert raised.value.field == "depends_on"


def test_an_unknown_on_parent_failure_is_refused(app: App) -> None:
    register(app)
    parent = app.enqueue("t.ok", {})
    with pytest.raises(EnqueueError, match="on_parent_failure must be") as raised:
        app.enqueue("t.ok", {}, depends_on=[parent], on_parent_failure="ignore")  # type: ignore[arg-type]
    assert raised.value.field == "on_parent_failure"


def test_a_job_cannot_depend_on_itself(app: App) -> None:
    register(app)
    first = app.enqueue("t.ok", {}, dedupe_key="k")
    # The dedupe key returns `first`: that would make it depend on itself.
    with pytest.raises(EnqueueError, match=f"job {first} cannot depend on itself") as raised:
        app.enqueue("t.ok", {}, dedupe_key="k", depends_on=[first])
    assert raised.value.field == "depends_on"
    with pytest.raises(EnqueueError, match="cannot depend on itself"):
        app.enqueue_many([{"type": "t.ok", "dedupe_key": "k", "depends_on": [first]}])
    with psycopg.connect(app.url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot depend on itself"):
            conn.execute(
                "SELECT nightcrew.enqueue('t.ok', dedupe_key => 'k', depends_on => ARRAY[%s])",
                (first,),
            )
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="cannot depend on itself"):
            conn.execute("SELECT nightcrew.link_parents(%s, ARRAY[%s])", (first, first))


# ---- bulk, SQL and fan-out ------------------------------------------------------------------


async def test_bulk_items_and_sql_enqueue_take_depends_on(aapp: App) -> None:
    ran: list[UUID] = []
    register(aapp, ran)
    parent = await aapp.aenqueue("t.fail", {})
    ids = await aapp.aenqueue_many(
        [
            {"type": "t.ok", "payload": {"i": 0}},
            {"type": "t.ok", "depends_on": [parent], "on_parent_failure": "run"},
            {"type": "t.ok", "depends_on": [parent]},
        ]
    )
    with psycopg.connect(aapp.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT nightcrew.enqueue('t.ok', depends_on => ARRAY[%s, %s]::uuid[],"
            " on_parent_failure => 'run')",
            (parent, ids[0]),
        ).fetchone()
    assert row is not None
    from_sql = row[0]
    assert job(aapp, from_sql).pending_parents == 2
    await aapp.worker(concurrency=4).run_until_idle()
    assert job(aapp, ids[1]).status is JobStatus.COMPLETED
    assert job(aapp, ids[2]).status is JobStatus.CANCELLED
    assert job(aapp, from_sql).status is JobStatus.COMPLETED
    assert ran.count(from_sql) == 1


async def test_fan_out_runs_then_after_every_child(aapp: App) -> None:
    ran: list[UUID] = []
    register(aapp, ran)
    out = await aapp.afan_out(
        [{"type": "t.ok", "payload": {"n": n}} for n in range(10)],
        then={"type": "t.ok", "payload": {"then": True}, "priority": 5},
    )
    assert isinstance(out, FanOut) and len(out.children) == 10
    assert job(aapp, out.then).pending_parents == 10
    await aapp.worker(concurrency=4).run_until_idle()
    assert ran[-1] == out.then and ran.count(out.then) == 1
    assert sorted(ran[:-1]) == sorted(out.children)


def test_fan_out_joins_the_callers_transaction(app: App) -> None:
    register(app)
    with psycopg.connect(app.url, autocommit=True) as conn:
        with pytest.raises(RuntimeError), conn.transaction():
            app.fan_out([{"type": "t.ok"}], then={"type": "t.ok"}, conn=conn)
            raise RuntimeError("roll back")
        assert app.list_jobs() == []
        out = app.fan_out(
            [{"type": "t.fail"}], then={"type": "t.ok", "on_parent_failure": "run"}, conn=conn
        )
    then = job(app, out.then)
    assert then.on_parent_failure == "run" and then.depends_on == out.children


def test_fan_out_refuses_a_bad_then_and_writes_nothing(app: App) -> None:
    register(app)
    with pytest.raises(EnqueueError, match="then: unknown keys"):
        app.fan_out([{"type": "t.ok"}], then={"type": "t.ok", "depends_on": []})
    with pytest.raises(EnqueueError, match="then: unknown job type"):
        app.fan_out([{"type": "t.ok"}], then={"type": "t.nope"})
    assert app.list_jobs() == []


# ---- concurrency ---------------------------------------------------------------------------


def _processing(conn: psycopg.Connection[Any], job_id: UUID, worker: str) -> None:
    conn.execute(
        "UPDATE nightcrew.jobs SET status = 'processing', attempts = 1, worker_id = %s,"
        " lease_expires_at = now() + interval '1 minute' WHERE id = %s",
        (worker, job_id),
    )


def _finish(url: str, job_id: UUID, worker: str, start: threading.Barrier) -> None:
    """Complete ``job_id`` with the worker's own statement, at the barrier's signal."""
    outcome = f'[{{"id":"{job_id}","attempt":1,"status":"completed","result":null,"error":null,"delay":0}}]'  # noqa: E501
    with psycopg.connect(url) as conn:
        start.wait(10)
        conn.execute(query("finish_jobs"), {"worker_id": worker, "outcomes": outcome})
        conn.commit()


def test_two_parents_completing_at_once_release_the_dependent_once(app: App) -> None:
    register(app)
    url = app.url
    with psycopg.connect(url, autocommit=True) as conn:
        listener = psycopg.connect(url, autocommit=True)
        try:
            for _ in range(20):
                first, second = app.enqueue("t.ok", {}), app.enqueue("t.ok", {})
                then = app.enqueue("t.ok", {}, queue="fan-in", depends_on=[first, second])
                _processing(conn, first, "w1")
                _processing(conn, second, "w2")
                listener.execute("LISTEN nightcrew_jobs")
                start = threading.Barrier(2)
                threads = [
                    threading.Thread(target=_finish, args=(url, first, "w1", start)),
                    threading.Thread(target=_finish, args=(url, second, "w2", start)),
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join(20)
                row = conn.execute(
                    "SELECT status::text, pending_parents FROM nightcrew.jobs WHERE id = %s",
                    (then,),
                ).fetchone()
                assert row == ("pending", 0)
                conn.execute("SELECT pg_notify('nightcrew_jobs', 'end-of-round')")
                woken = []
                for note in listener.notifies(timeout=10):
                    if note.payload == "end-of-round":
                        break
                    woken.append(note.payload)
                listener.execute("UNLISTEN nightcrew_jobs")
                assert woken.count("fan-in") == 1, woken
                conn.execute("DELETE FROM nightcrew.jobs WHERE id = %s", (then,))
        finally:
            listener.close()


async def test_a_pruned_parent_leaves_its_edges_and_is_read_from_the_archive(aapp: App) -> None:
    register(aapp)
    seen: list[list[ParentJob]] = []

    @aapp.job("t.after", max_attempts=1)
    async def after(ctx: JobContext, payload: dict[str, Any]) -> None:
        seen.append(await ctx.parents.all())

    early = await aapp.aenqueue("t.ok", {"early": True})
    await aapp.worker().run_until_idle()
    late = await aapp.aenqueue("t.ok", {}, delay=3600)
    then = await aapp.aenqueue("t.after", {}, depends_on=[early, late])
    pruned = await prune(aapp, completed_after=timedelta(0), failed_after=timedelta(0),
                         now=datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
    assert pruned == 1
    with psycopg.connect(aapp.url, autocommit=True) as conn:
        edges = conn.execute(
            "SELECT parent_id FROM nightcrew.job_dependencies WHERE job_id = %s", (then,)
        ).fetchall()
        assert edges == [(late,)]
        conn.execute("UPDATE nightcrew.jobs SET run_at = now() WHERE id = %s", (late,))
    await aapp.worker().run_until_idle()
    assert job(aapp, then).status is JobStatus.COMPLETED
    by_id = {parent.id: parent for parent in seen[0]}
    assert by_id[early] == ParentJob(early, "t.ok", JobStatus.COMPLETED, {"early": True}, None)
    assert by_id[late].status is JobStatus.COMPLETED


def test_one_statement_ending_completed_and_failed_parents_names_the_failed_one(app: App) -> None:
    """The worker's batch finishes parents of one dependent together: the counts of the
    completed ones go through, and the dependent is cancelled naming the failed parent."""
    register(app)
    ok, bad, ok2 = (app.enqueue("t.ok", {}) for _ in range(3))
    then = app.enqueue("t.ok", {}, depends_on=[ok, bad, ok2])
    run_mode = app.enqueue("t.ok", {}, depends_on=[ok, ok2], on_parent_failure="run")
    with psycopg.connect(app.url, autocommit=True) as conn:
        for parent in (ok, bad, ok2):
            _processing(conn, parent, "w1")
        outcomes = ",".join(
            f'{{"id":"{parent}","attempt":1,"status":"{status}","result":null,'
            f'"error":{"null" if status == "completed" else chr(34) + "boom" + chr(34)},'
            '"delay":0}'
            for parent, status in ((ok, "completed"), (bad, "failed"), (ok2, "completed"))
        )
        conn.execute(query("finish_jobs"), {"worker_id": "w1", "outcomes": f"[{outcomes}]"})
    cancelled = job(app, then)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.error == f"parent job {bad} (t.ok) ended failed"
    assert cancelled.pending_parents == 0
    runnable = job(app, run_mode)
    assert (runnable.status, runnable.pending_parents) == (JobStatus.PENDING, 0)
