"""Keyed limits in-process: definition, key templates, the grant step, overrides, ctx.limit.

The cross-process guarantees (rates and concurrency across worker processes, a SIGKILLed
worker's slot) are in tests/faults/test_flow_control.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any

import psycopg
import pytest

from nightcrew import App, ConfigurationError, JobContext, Limit, LimitSlot, SyncJobContext
from nightcrew.limits import parse_rate
from tests.support import lateness_by_slot, most_in_window, record_rate_grants


@pytest.fixture
def clean_db(db_url: str) -> str:
    """The module's database with the queue and every limit's state emptied."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.jobs, nightcrew.workers, nightcrew.limits,"
            " nightcrew.limit_slots, nightcrew.limit_reservations, nightcrew.queue_pauses"
        )
    return db_url


@pytest.mark.parametrize(
    ("rate", "expected"), [("10/s", (10, 1.0)), ("100/m", (100, 60.0)), (" 3 / h ", (3, 3600.0))]
)
def test_rates_parse(rate: str, expected: tuple[int, float]) -> None:
    assert parse_rate(rate) == expected


@pytest.mark.parametrize("rate", ["10", "0/s", "-1/s", "10/d", "ten/s", "10/s/s", ""])
def test_bad_rates_are_refused_with_the_value(rate: str) -> None:
    with pytest.raises(ConfigurationError, match="rate must look like"):
        Limit("k", rate=rate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"key": "k"}, "needs a rate, a concurrency or both"),
        ({"key": "k", "concurrency": 0}, "concurrency must be an integer >= 1"),
        ({"key": "k", "concurrency": True}, "concurrency must be an integer >= 1"),
        ({"key": "", "rate": "1/s"}, "non-empty"),
        ({"key": "t:{tenant}", "rate": "1/s"}, r"\{tenant\} is not one of"),
        ({"key": "t:{payload.a.b}", "rate": "1/s"}, "is not one of"),
        ({"key": "t:{user_id!r}", "rate": "1/s"}, "no format spec"),
        ({"key": "t:{user_id", "rate": "1/s"}, "limit key"),
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, Any], message: str) -> None:
    key = kwargs.pop("key")
    with pytest.raises(ConfigurationError, match=message):
        Limit(key, **kwargs)


def test_limit_is_frozen_and_keyword_only() -> None:
    limit = Limit("places", rate="10/s")
    with pytest.raises(AttributeError):
        limit.rate = "1/s"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Limit("places", "10/s")  # type: ignore[misc]


def test_keys_are_filled_from_the_job() -> None:
    job = {"user_id": "alice", "queue": "q", "type": "t", "payload": {"domain": "x.com", "n": 3}}
    assert Limit("tenant:{user_id}", concurrency=2).resolve(job) == "tenant:alice"
    assert Limit("{queue}/{type}", rate="1/s").resolve(job) == "q/t"
    assert Limit("d:{payload.domain}:{payload.n}", rate="1/s").resolve(job) == "d:x.com:3"
    # A missing value leaves its part empty: such jobs share one key.
    assert Limit("tenant:{user_id}", rate="1/s").resolve({"payload": None}) == "tenant:"
    assert Limit("d:{payload.domain}", rate="1/s").resolve({"payload": [1]}) == "d:"


def test_job_types_refuse_what_is_not_a_limit(app: App) -> None:
    with pytest.raises(ConfigurationError, match=r"must be nightcrew\.Limit"):

        @app.job("t.bad", limits=["places"])  # type: ignore[list-item]
        async def bad(ctx: JobContext, payload: Any) -> None: ...


async def test_rate_limited_jobs_are_spaced_and_burn_no_attempt(aapp: App, clean_db: str) -> None:
    starts: list[float] = []
    granted = record_rate_grants(clean_db)

    entries: list[float] = []

    @aapp.job("t.rated", limits=[Limit("rated", rate="20/s")])
    async def rated(ctx: JobContext, payload: Any) -> None:
        starts.append(time.time())
        assert ctx.limit_slot is not None
        entries.append(ctx.limit_slot.entered_at)

    await aapp.aenqueue_many([{"type": "t.rated"}] * 30)
    await aapp.worker(concurrency=10).run_until_idle(timeout=30)
    assert len(starts) == 30
    took = max(starts) - min(starts)
    # 20 slots in any 1 s, as the database grants them (a job that starts late for its
    # slot is given back and granted again, so there may be more slots than jobs). The
    # handlers' own times are noted when the loop gets to them: under load, late and
    # bunched; the guard's (ctx.limit_slot) are what the limit promises.
    slots = granted("rated")
    assert took <= len(slots) / 20 * 1.05 + 3.0, (took, len(slots))  # (a loaded machine)
    assert len(slots) >= 30
    assert most_in_window(slots, 1.0) <= 20, most_in_window(slots, 1.0)
    assert max(slots) - min(slots) >= 29 / 20 * 1.05 - 0.001
    assert min(starts) >= min(slots) - 0.005  # no job ran before the first slot
    # The late-entry guard let each job start within 25 ms after a slot of its own.
    lateness_by_slot(entries, slots, 0.025 + 0.005)
    pool = await aapp.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT attempts, status::text, count(*) FROM nightcrew.jobs"
            " WHERE type = 't.rated' GROUP BY 1, 2"
        )
        assert await cur.fetchall() == [(1, "completed", 30)]
        cur = await conn.execute("SELECT count(*) FROM nightcrew.limit_reservations")
        assert await cur.fetchone() == (0,)


async def test_concurrency_limit_per_user_key(aapp: App) -> None:
    running: dict[str, int] = {"a": 0, "b": 0}
    peak: dict[str, int] = {"a": 0, "b": 0}

    @aapp.job("t.tenant", limits=[Limit("tenant:{user_id}", concurrency=2)])
    async def tenant(ctx: JobContext, payload: Any) -> None:
        user = ctx.job.user_id or ""
        running[user] += 1
        peak[user] = max(peak[user], running[user])
        await asyncio.sleep(0.05)
        running[user] -= 1

    for user in ("a", "b"):
        await aapp.aenqueue_many([{"type": "t.tenant", "user_id": user}] * 8)
    await aapp.worker(concurrency=10).run_until_idle(timeout=30)
    assert peak == {"a": 2, "b": 2}
    assert {info.key for info in aapp.limits()} == {"tenant:a", "tenant:b"}
    assert all(info.concurrency == 2 and info.running == 0 for info in aapp.limits())


async def test_set_limit_overrides_the_code_and_clear_restores_it(aapp: App) -> None:
    starts: list[float] = []

    @aapp.job("t.slow", limits=[Limit("slow", rate="1/h")])
    async def slow(ctx: JobContext, payload: Any) -> None:
        starts.append(time.monotonic())

    await aapp.aenqueue_many([{"type": "t.slow"}] * 3)
    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 10
        while len(starts) < 1 or not aapp.limits():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        assert len(starts) == 1  # the other two wait an hour for their slots
        info = await asyncio.to_thread(aapp.set_limit, "slow", rate="50/s", by="ops")
        assert (info.rate, info.concurrency, info.overridden) == ("50/s", None, True)
        assert (info.code_rate, info.code_concurrency) == ("1/h", None)
        deadline = time.monotonic() + 10
        while len(starts) < 3:  # released from their reserved slots at once
            assert time.monotonic() < deadline, starts
            await asyncio.sleep(0.02)
        assert await asyncio.to_thread(aapp.clear_limit, "slow")
        assert not await asyncio.to_thread(aapp.clear_limit, "slow")
        (info,) = await asyncio.to_thread(aapp.limits)
        assert (info.rate, info.overridden) == ("1/h", False)
    finally:
        worker.stop()
        await runner


def test_set_limit_refuses_bad_values(app: App) -> None:
    with pytest.raises(ConfigurationError, match="rate must look like"):
        app.set_limit("k", rate="fast")
    with pytest.raises(ConfigurationError, match="give a rate, a concurrency or both"):
        app.set_limit("k")
    with pytest.raises(ConfigurationError, match="at most 200"):
        app.set_limit("k" * 201, rate="1/s")
    assert app.limits() == []


async def test_ctx_limit_spaces_calls_and_holds_concurrency(aapp: App) -> None:
    calls: list[float] = []
    inside = {"now": 0, "peak": 0}

    @aapp.job("t.calls")
    async def calls_job(ctx: JobContext, payload: Any) -> None:
        async with ctx.limit("api", rate="10/s"):
            calls.append(time.monotonic())
        async with ctx.limit("pool", concurrency=1):
            inside["now"] += 1
            inside["peak"] = max(inside["peak"], inside["now"])
            await asyncio.sleep(0.02)
            inside["now"] -= 1

    await aapp.aenqueue_many([{"type": "t.calls"}] * 8)
    await aapp.worker(concurrency=8).run_until_idle(timeout=30)
    assert len(calls) == 8 and inside["peak"] == 1
    assert most_in_window(calls, 0.5) <= 6, calls
    assert max(calls) - min(calls) >= 0.55
    pool = await aapp.apool()
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM nightcrew.limit_slots")
        assert await cur.fetchone() == (0,)  # every block gave its slot back


async def test_a_ctx_limit_woken_late_lets_its_slot_pass(aapp: App, clean_db: str) -> None:
    granted = record_rate_grants(clean_db)
    seen: list[LimitSlot] = []

    @aapp.job("t.stalled")
    async def stalled(ctx: JobContext, payload: Any) -> None:
        async with ctx.limit("stalled", rate="5/s") as slot:
            seen.append(slot)
        # The next slot is 210 ms on; the event loop is blocked from 50 to 350 ms (as by
        # a CPU-bound handler), so this block wakes about 140 ms late for it.
        asyncio.get_running_loop().call_later(0.05, time.sleep, 0.3)
        async with ctx.limit("stalled", rate="5/s") as slot:
            seen.append(slot)

    await aapp.aenqueue("t.stalled")
    await aapp.worker().run_until_idle(timeout=30)
    first, second = seen
    # (The first may forfeit too, when a loaded machine reads its grant's reply late.)
    assert second.forfeited >= 1
    slots = granted("stalled")
    assert len(slots) == 2 + first.forfeited + second.forfeited  # late slots passed unused
    late = lateness_by_slot([first.entered_at, second.entered_at], slots, 0.025 + 0.005)
    assert all(s.late is not None and s.late <= 0.025 for s in seen), late


async def test_sync_ctx_limit(aapp: App) -> None:
    calls: list[float] = []

    @aapp.job("t.sync_calls")
    def sync_calls(ctx: SyncJobContext, payload: Any) -> None:
        with ctx.limit("sync-api", rate="10/s", concurrency=1) as slot:
            calls.append(time.monotonic())
            assert slot.late is not None and slot.late <= 0.025

    await aapp.aenqueue_many([{"type": "t.sync_calls"}] * 4)
    await aapp.worker(concurrency=4).run_until_idle(timeout=30)
    assert len(calls) == 4
    assert max(calls) - min(calls) >= 0.25, calls


def test_unlimited_jobs_never_reach_the_grant(app: App, clean_db: str) -> None:
    @app.job("t.free")
    async def free(ctx: JobContext, payload: Any) -> None: ...

    app.enqueue_many([{"type": "t.free"}] * 5)
    asyncio.run(app.worker().run_until_idle())
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM nightcrew.limits").fetchone() == (0,)


async def test_a_paused_queue_keeps_its_jobs_until_resumed(aapp: App) -> None:
    ran: list[str] = []

    @aapp.job("t.paused", queue="reports")
    async def paused(ctx: JobContext, payload: Any) -> None:
        ran.append(ctx.job.queue)

    @aapp.job("t.other", queue="other")
    async def other(ctx: JobContext, payload: Any) -> None:
        ran.append(ctx.job.queue)

    assert await asyncio.to_thread(aapp.pause_queue, "reports", by="test")
    await aapp.aenqueue_many([{"type": "t.paused"}] * 3 + [{"type": "t.other"}])
    # Idle once the other queue is done: a paused queue's jobs are not runnable.
    await aapp.worker().run_until_idle(timeout=10)
    assert ran == ["other"]
    (reports,) = [q for q in await asyncio.to_thread(aapp.queues) if q.name == "reports"]
    assert (reports.depth, reports.running, reports.paused) == (3, 0, True)
    assert reports.paused_at is not None
    assert await asyncio.to_thread(aapp.resume_queue, "reports")
    await aapp.worker().run_until_idle(timeout=10)
    assert sorted(ran) == ["other", "reports", "reports", "reports"]


def test_bad_queue_names_are_refused(app: App) -> None:
    with pytest.raises(ConfigurationError, match="queue name"):
        app.pause_queue("")
    with pytest.raises(ConfigurationError, match="queue name"):
        app.resume_queue("a b")


async def test_a_cancel_ends_a_ctx_limit_wait(aapp: App) -> None:
    entered: list[int] = []

    @aapp.job("t.patient")
    async def patient(ctx: JobContext, payload: Any) -> None:
        for n in range(2):  # the second call's slot is an hour away
            async with ctx.limit("hourly", rate="1/h"):
                entered.append(n)

    job_id = await aapp.aenqueue("t.patient")
    worker = aapp.worker()
    runner = asyncio.create_task(worker.run())
    try:
        await worker.wait_listening()
        deadline = time.monotonic() + 10
        while not entered:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # now waiting for the second slot
        assert await aapp.acancel(job_id)
        deadline = time.monotonic() + 5
        while (job := await aapp.aget_job(job_id)) is None or job.status != "cancelled":
            assert time.monotonic() < deadline, "the wait was not interrupted"
            await asyncio.sleep(0.05)
        assert entered == [0]
    finally:
        worker.stop()
        await runner


def _racing_grants(
    url: str, call: str, params: list[dict[str, Any]], hold: float = 0.3
) -> list[tuple[Any, ...]]:
    """Run ``call`` with each of ``params`` on its own connection, all at once, while the
    first holds its transaction open ``hold`` seconds: the others reach the key while its
    state is being changed. Rows in the order the calls committed."""
    with psycopg.connect(url, autocommit=True) as conn:  # the keys' rows exist already
        conn.execute(
            "INSERT INTO nightcrew.limits (key, code_rate_count, code_rate_seconds,"
            " code_concurrency) VALUES ('race', 5, 1.0, NULL), ('conc', NULL, NULL, 3),"
            " ('conc2', NULL, NULL, 3) ON CONFLICT DO NOTHING"
        )
    rows: list[tuple[Any, ...]] = []
    lock = threading.Lock()
    first_in = threading.Event()

    def run(p: dict[str, Any], first: bool) -> None:
        with psycopg.connect(url) as conn:  # one transaction, committed on leaving
            got = conn.execute(call, p).fetchall()
            if first:
                first_in.set()
                time.sleep(hold)
            with lock:
                rows.extend(got)

    head = threading.Thread(target=run, args=(params[0], True))
    head.start()
    assert first_in.wait(10)
    rest = [threading.Thread(target=run, args=(p, False)) for p in params[1:]]
    for thread in rest:
        thread.start()
    for thread in [head, *rest]:
        thread.join(20)
    return rows


def _processing_jobs(app: App, n: int) -> list[str]:
    """``n`` jobs as a worker would hold them: processing, attempt 1."""

    @app.job("t.held")
    def held(ctx: SyncJobContext, payload: Any) -> None: ...

    ids = [str(app.enqueue("t.held", {})) for _ in range(n)]
    with psycopg.connect(app.url, autocommit=True) as conn:
        conn.execute(
            "UPDATE nightcrew.jobs SET status = 'processing', attempts = 1,"
            " lease_expires_at = now() + interval '1 minute' WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
    return ids


def test_racing_ctx_limits_never_share_a_slot(app: App, clean_db: str) -> None:
    # Eight connections take a rate slot of one key at once; the first holds its
    # transaction open, so a grant that read the key's state without waiting for its
    # lock (or with an older snapshot) would take the same slot.
    granted = record_rate_grants(clean_db)
    call = (
        "SELECT granted, wait FROM nightcrew.limit_acquire('race', 5, 1.0, NULL,"
        " gen_random_uuid(), 1)"
    )
    rows = _racing_grants(clean_db, call, [{}] * 8)
    assert [ok for ok, _ in rows] == [True] * 8
    slots = granted("race")
    assert len(slots) == 8
    assert min(b - a for a, b in itertools.pairwise(slots)) >= 0.21 - 1e-6, slots
    assert most_in_window(slots, 1.0) <= 5


def test_racing_grants_never_exceed_a_concurrency(app: App, clean_db: str) -> None:
    # Six connections each grant two processing jobs of a key with concurrency 3 at
    # once (the worker's path), and six more take ctx.limit slots of another: 3 each.
    ids = _processing_jobs(app, 24)
    limit = [{"key": "conc", "rate_count": None, "rate_seconds": None, "concurrency": 3}]
    batches = [
        {"jobs": json.dumps([{"id": i, "attempt": 1, "limits": limit} for i in pair])}
        for pair in (ids[k : k + 2] for k in range(0, 12, 2))
    ]
    rows = _racing_grants(
        clean_db, "SELECT job_id, wait FROM nightcrew.limit_grant(%(jobs)s, 0.2, 0.25)", batches
    )
    assert len(rows) == 12
    assert sum(1 for _, wait in rows if wait >= 0) == 3
    acquire = "SELECT granted FROM nightcrew.limit_acquire('conc2', NULL, NULL, 3, %(id)s, 1)"
    rows = _racing_grants(clean_db, acquire, [{"id": i} for i in ids[12:18]])
    assert sorted(ok for (ok,) in rows) == [False] * 3 + [True] * 3
    with psycopg.connect(clean_db) as conn:
        held = conn.execute(
            "SELECT key, count(*) FROM nightcrew.limit_slots GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert held == [("conc", 3), ("conc2", 3)]
