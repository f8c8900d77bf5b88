"""Enqueue: single, bulk (COPY), dedupe, inside the caller's transaction, bad arguments."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import BaseModel

from nightcrew import (
    App,
    ConfigurationError,
    EnqueueError,
    JobContext,
    JobStatus,
    PayloadValidationError,
)
from nightcrew.ids import uuid7
from nightcrew.lifecycle.enqueue import (
    SIMPLE_PARAMS,
    build_job,
    encode_json,
    json_too_deep,
    plain_job,
)


class Week(BaseModel):
    week: int


def register(app: App) -> None:
    @app.job("reports.weekly", priority=2, max_attempts=4, timeout=30)
    async def weekly(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    @app.job("reports.typed")
    async def typed(ctx: JobContext, payload: Week) -> None:
        return None


def count_jobs(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone()
        assert row is not None
        return int(row[0])


def test_enqueue_stores_every_field(app: App) -> None:
    register(app)
    before = datetime.now(UTC)
    job_id = app.enqueue("reports.weekly", {"week": 12}, delay=10, dedupe_key="w12", user_id="u1")
    job = app.get_job(job_id)
    assert job is not None
    assert job.status is JobStatus.PENDING
    assert (job.type, job.queue, job.payload) == ("reports.weekly", "default", {"week": 12})
    assert (job.priority, job.max_attempts, job.timeout_seconds) == (2, 4, 30)
    assert (job.dedupe_key, job.user_id, job.attempts, job.progress) == ("w12", "u1", 0, 0)
    assert job.run_at >= before + timedelta(seconds=9)
    assert job.errors == [] and job.checkpoint is None and job.result is None


def test_per_call_options_override_type_defaults(app: App) -> None:
    register(app)
    at = datetime.now(UTC) + timedelta(hours=1)
    job = app.get_job(app.enqueue("reports.weekly", {}, priority=-5, run_at=at, max_attempts=1))
    assert job is not None
    assert (job.priority, job.max_attempts) == (-5, 1)
    assert abs((job.run_at - at).total_seconds()) < 0.001


def test_get_unknown_or_malformed_id_returns_none(app: App) -> None:
    assert app.get_job("01a2e5d3-0000-7000-8000-000000000000") is None
    assert app.get_job("not-a-uuid") is None


def test_ids_are_time_ordered(app: App) -> None:
    register(app)
    ids = [app.enqueue("reports.weekly", {}) for _ in range(5)]
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "nope"}, "unknown job type 'nope'"),
        ({"payload": {"x": object()}}, "not JSON-serialisable"),
        ({"payload": {"x": float("nan")}}, "not JSON-serialisable"),
        ({"delay": -1}, "delay must not be negative"),
        ({"max_attempts": 0}, "max_attempts must be an integer >= 1"),
        ({"priority": 10**9}, "priority must be between"),
        ({"priority": "high"}, "priority must be an integer"),
        ({"run_at": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"dedupe_key": ""}, "dedupe_key must be a non-empty string"),
        ({"payload": {"note": "a\x00b"}}, "contains a NUL character"),
        ({"user_id": "u\x00"}, "user_id must be a non-empty string without NUL"),
    ],
)
def test_bad_arguments_raise_and_write_nothing(
    app: App, kwargs: dict[str, object], message: str
) -> None:
    register(app)
    args: dict[str, object] = {"type": "reports.weekly", "payload": {}} | kwargs
    with pytest.raises(EnqueueError, match=message):
        app.enqueue(**args)  # type: ignore[arg-type]
    with pytest.raises(EnqueueError, match=message):
        app.enqueue_many([args])
    assert count_jobs(app.settings.database_url or "") == 0


def test_pydantic_payload_is_validated_at_enqueue(app: App) -> None:
    register(app)
    with pytest.raises(PayloadValidationError, match=r"reports\.typed"):
        app.enqueue("reports.typed", {"week": "twelve"})
    job = app.get_job(app.enqueue("reports.typed", Week(week=3)))
    assert job is not None and job.payload == {"week": 3}


def test_dedupe_returns_the_live_job_and_frees_the_key_when_done(app: App) -> None:
    register(app)
    first = app.enqueue("reports.weekly", {}, dedupe_key="k")
    assert app.enqueue("reports.weekly", {"other": 1}, dedupe_key="k") == first
    assert app.cancel(first)
    second = app.enqueue("reports.weekly", {}, dedupe_key="k")
    assert second != first


def test_concurrent_enqueues_with_one_dedupe_key_make_one_job(app: App) -> None:
    register(app)
    barrier = threading.Barrier(20)
    ids: list[object] = []

    def enqueue() -> None:
        barrier.wait()
        ids.append(app.enqueue("reports.weekly", {}, dedupe_key="race"))

    threads = [threading.Thread(target=enqueue) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 20 and len(set(ids)) == 1
    assert count_jobs(app.settings.database_url or "") == 1


def test_enqueue_many_keeps_order_and_honours_dedupe(app: App) -> None:
    register(app)
    existing = app.enqueue("reports.weekly", {}, dedupe_key="a")
    ids = app.enqueue_many(
        [
            {"type": "reports.weekly", "payload": {"i": 0}},
            {"type": "reports.weekly", "payload": {"i": 1}, "dedupe_key": "a"},
            {"type": "reports.weekly", "payload": {"i": 2}, "dedupe_key": "b"},
            {"type": "reports.weekly", "payload": {"i": 3}, "dedupe_key": "b"},
            {"type": "reports.weekly", "payload": {"i": 4}, "delay": 60, "priority": 7},
        ]
    )
    assert ids[1] == existing
    assert ids[2] == ids[3] != ids[0]
    assert count_jobs(app.settings.database_url or "") == 4
    kept = app.get_job(ids[2])
    assert kept is not None and kept.payload == {"i": 2}  # first of the batch wins
    late = app.get_job(ids[4])
    assert late is not None and late.priority == 7 and late.run_at > late.created_at


def test_enqueue_many_rejects_unknown_keys(app: App) -> None:
    register(app)
    with pytest.raises(EnqueueError, match=r"item 1: unknown keys \['colour'\]"):
        app.enqueue_many([{"type": "reports.weekly"}, {"type": "reports.weekly", "colour": 1}])


def test_enqueue_in_callers_transaction(app: App) -> None:
    register(app)
    url = app.settings.database_url or ""
    with psycopg.connect(url) as conn:
        app.enqueue("reports.weekly", {}, conn=conn)
        app.enqueue_many([{"type": "reports.weekly"}], conn=conn)
        conn.rollback()
    assert count_jobs(url) == 0
    with psycopg.connect(url) as conn:
        job_id = app.enqueue("reports.weekly", {}, conn=conn)
        conn.commit()
    assert app.get_job(job_id) is not None


async def test_async_enqueue_twins(aapp: App) -> None:
    register(aapp)
    job_id = await aapp.aenqueue("reports.weekly", {"a": 1}, dedupe_key="x")
    assert await aapp.aenqueue("reports.weekly", {}, dedupe_key="x") == job_id
    ids = await aapp.aenqueue_many(
        [{"type": "reports.weekly"}, {"type": "reports.typed", "payload": {"week": 1}}]
    )
    assert len(ids) == 2
    job = await aapp.aget_job(ids[1])
    assert job is not None and job.type == "reports.typed"


async def test_a_refused_async_enqueue_gives_its_pooled_connection_back(clean_db: str) -> None:
    # One connection: a call that kept it would leave the next one waiting for the pool.
    app = App(clean_db, migrate_on_start=False, pool_min_size=1, pool_max_size=1)
    register(app)
    unknown_parent = uuid7()
    try:
        for _ in range(3):
            with pytest.raises(EnqueueError) as refused:
                await app.aenqueue("reports.weekly", {}, depends_on=[unknown_parent])
            assert refused.value.field == "depends_on"
        job = await asyncio.wait_for(app.aget_job(await app.aenqueue("reports.weekly")), 10)
        assert job is not None and job.status == "pending"
    finally:
        await app.aclose()


def test_bulk_rows_take_their_type_defaults_and_the_transaction_clock(app: App) -> None:
    register(app)
    payloads = [{"i": i, "text": 'tab\there, new\nline, back\\slash, é, "q"'} for i in range(600)]
    items: list[dict[str, object]] = [{"type": "reports.weekly", "payload": p} for p in payloads]
    items.insert(300, {"type": "reports.weekly", "payload": {"late": True}, "delay": 60})
    items.insert(0, {"type": "reports.typed", "payload": {"week": 9}})
    ids = app.enqueue_many(items)
    assert len(ids) == len(items) == len(set(ids))
    with psycopg.connect(app.settings.database_url or "") as conn:
        rows = conn.execute(
            "SELECT id, type, queue, payload, priority, max_attempts, timeout_seconds,"
            " run_at, created_at, status::text FROM nightcrew.jobs"
        ).fetchall()
    by_id = {row[0]: row for row in rows}
    assert [by_id[job_id][3] for job_id in ids] == [item["payload"] for item in items]
    typed, fast, late = by_id[ids[0]], by_id[ids[1]], by_id[ids[301]]
    assert typed[1] == "reports.typed" and typed[4:7] == (0, 3, None)
    assert fast[1:3] == ("reports.weekly", "default") and fast[4:7] == (2, 4, 30)
    assert fast[7] == fast[8] == typed[7] and fast[9] == "pending"  # one clock: now()
    assert late[7] >= late[8] + timedelta(seconds=60)


def test_a_bad_item_after_streamed_chunks_writes_nothing(app: App) -> None:
    register(app)
    items: list[dict[str, object]] = [
        {"type": "reports.weekly", "payload": {"i": i}} for i in range(900)
    ]
    items[850] = {"type": "reports.weekly", "payload": {"x": object()}}
    with pytest.raises(EnqueueError, match=r"item 850: payload .* not JSON-serialisable"):
        app.enqueue_many(items)
    items[850] = {"type": "reports.weekly", "payload": {"note": "a\x00b"}}
    with pytest.raises(EnqueueError, match=r"item 850: .*NUL character"):
        app.enqueue_many(iter(items))  # a generator: no length known up front
    assert count_jobs(app.settings.database_url or "") == 0
    # The pooled connection was rolled back and stays usable.
    assert len(app.enqueue_many(items[:10])) == 10
    assert count_jobs(app.settings.database_url or "") == 10


def _wake_ups(conn: psycopg.Connection[tuple[object, ...]]) -> list[str]:
    """Queue names notified on nightcrew_jobs up to a marker sent now (so none is missed)."""
    conn.execute("SELECT pg_notify('nightcrew_jobs', 'marker')")
    queues = []
    for note in conn.notifies(timeout=10):
        if note.payload == "marker":
            return queues
        queues.append(note.payload)
    raise AssertionError("the marker notification never arrived")


def test_bulk_wakes_every_queue_it_fills_and_only_once_committed(app: App) -> None:
    register(app)

    @app.job("mail.send", queue="mail")
    async def send(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    url = app.settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        # "mail" first appears after the first chunk was encoded and the transaction began.
        items: list[dict[str, object]] = [
            {"type": "reports.weekly", "payload": {"i": i}} for i in range(100)
        ]
        items[60] = {"type": "mail.send", "payload": {"to": "a@example.com"}}
        app.enqueue_many(items)
        assert sorted(_wake_ups(listener)) == ["default", "mail"]
        # A call that fails is rolled back with its notifications.
        items[90] = {"type": "nope"}
        with pytest.raises(EnqueueError, match="item 90: unknown job type 'nope'"):
            app.enqueue_many(items)
        assert _wake_ups(listener) == []
    assert count_jobs(url) == 100


def test_single_enqueue_wakes_its_queue_once_committed_and_only_when_due(app: App) -> None:
    # A pooled enqueue commits the job, then wakes the queue from its own statement (see
    # insert_job_plain.sql); in the caller's transaction the wake-up waits for its commit.
    register(app)

    @app.job("mail.send", queue="mail")
    async def send(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    url = app.settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        app.enqueue("mail.send", {"to": "a@example.com"})
        app.enqueue("reports.weekly", {"i": 1}, dedupe_key="k")
        app.enqueue("reports.weekly", {"i": 2}, dedupe_key="k")  # the live job: no new job
        app.enqueue("reports.weekly", {"i": 3}, dedupe_key="q", dedupe_scope="queued")
        app.enqueue("reports.weekly", {"i": 4}, delay=3600)  # not due: nothing to wake
        assert _wake_ups(listener) == ["mail", "default", "default"]
        with psycopg.connect(url) as conn:
            app.enqueue("mail.send", {"to": "b@example.com"}, conn=conn)
            assert _wake_ups(listener) == []  # not committed yet
            conn.commit()
        assert _wake_ups(listener) == ["mail"]
        with psycopg.connect(url) as conn:
            app.enqueue("mail.send", {"to": "c@example.com"}, conn=conn)
            conn.rollback()
        assert _wake_ups(listener) == []
    assert count_jobs(url) == 5


async def test_async_single_enqueue_wakes_its_queue(aapp: App) -> None:
    register(aapp)
    url = aapp.settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        await aapp.aenqueue("reports.weekly", {"i": 1})
        await aapp.aenqueue("reports.weekly", {"i": 2}, run_at=datetime.now(UTC) + timedelta(1))
        assert _wake_ups(listener) == ["default"]
    assert count_jobs(url) == 2


async def test_concurrent_async_enqueues_all_wake_their_queue(aapp: App) -> None:
    # Concurrent enqueues may share one NOTIFY (sent after all their commits); every one is
    # followed by a wake-up, and none is left pending for the next enqueue.
    register(aapp)

    @aapp.job("mail.send", queue="mail")
    async def send(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    url = aapp.settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        await asyncio.gather(*(aapp.aenqueue("reports.weekly", {"i": i}) for i in range(40)),
                             aapp.aenqueue("mail.send", {"to": "a@example.com"}))  # fmt: skip
        woken = _wake_ups(listener)
        assert set(woken) == {"default", "mail"} and 2 <= len(woken) <= 41
        await aapp.aenqueue("reports.weekly", {"i": 40})
        assert _wake_ups(listener) == ["default"]
    assert count_jobs(url) == 42


def test_a_bad_bulk_item_leaves_the_callers_transaction_usable(app: App) -> None:
    register(app)
    url = app.settings.database_url or ""
    good: list[dict[str, object]] = [
        {"type": "reports.weekly", "payload": {"i": i}} for i in range(500)
    ]
    with psycopg.connect(url) as conn:
        kept = app.enqueue("reports.weekly", {"kept": True}, conn=conn)
        with pytest.raises(EnqueueError, match="item 500: unknown job type 'nope'"):
            app.enqueue_many([*good, {"type": "nope"}], conn=conn)
        more = app.enqueue_many(good[:3], conn=conn)
        conn.commit()
    assert count_jobs(url) == 4
    assert all(app.get_job(job_id) is not None for job_id in (kept, *more))


async def test_async_bulk_streams_many_chunks(aapp: App) -> None:
    register(aapp)
    ids = await aapp.aenqueue_many(
        {"type": "reports.weekly", "payload": {"i": i}} for i in range(2_000)
    )
    assert len(set(ids)) == 2_000
    assert count_jobs(aapp.settings.database_url or "") == 2_000
    job = await aapp.aget_job(ids[1_999])
    assert job is not None and job.payload == {"i": 1_999}


async def test_async_bulk_commits_with_its_wake_ups_or_writes_nothing(clean_db: str) -> None:
    # One pooled connection: the bulk transaction is begun and ended by hand on it, so a
    # refused call must leave it idle for the next one.
    app = App(clean_db, migrate_on_start=False, pool_min_size=1, pool_max_size=1)
    register(app)

    @app.job("odd.queue", queue="it's \\ {odd}")
    async def odd(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    items: list[dict[str, object]] = [
        {"type": "odd.queue" if i % 2 else "reports.weekly", "payload": {"i": i}}
        for i in range(700)
    ]
    try:
        with psycopg.connect(clean_db, autocommit=True) as listener:
            listener.execute("LISTEN nightcrew_jobs")
            for _ in range(2):
                bad = [*items[:600], {"type": "reports.weekly", "payload": {"x": object()}}]
                with pytest.raises(EnqueueError, match=r"^item 600: payload"):
                    await app.aenqueue_many(bad)
                assert count_jobs(clean_db) == 0
            ids = await asyncio.wait_for(app.aenqueue_many(items), 10)
            assert sorted(_wake_ups(listener)) == ["default", "it's \\ {odd}"]
        assert len(set(ids)) == 700 and count_jobs(clean_db) == 700
        job = await app.aget_job(ids[1])
        assert job is not None and job.queue == "it's \\ {odd}" and job.payload == {"i": 1}
    finally:
        await app.aclose()


def test_bulk_items_with_options_keep_every_option(app: App) -> None:
    register(app)
    notify = {"in_app": True, "on": ["failed"]}
    items: list[dict[str, object]] = [
        {"type": "reports.weekly", "payload": {"i": i}, "user_id": f"user\t{i % 3}\\x"}
        for i in range(300)
    ]
    items[7] |= {"priority": -3, "queue": "slow", "max_attempts": 9, "timeout": 2.5}
    items[8] |= {"notify": notify}
    ids = app.enqueue_many(items)
    jobs = [app.get_job(job_id) for job_id in ids]
    assert all(job is not None for job in jobs)
    assert [job.user_id for job in jobs if job] == [item["user_id"] for item in items]
    seventh, eighth, plain = jobs[7], jobs[8], jobs[9]
    assert seventh is not None and eighth is not None and plain is not None
    assert (seventh.priority, seventh.queue, seventh.max_attempts) == (-3, "slow", 9)
    assert seventh.timeout_seconds == 2.5
    assert (plain.priority, plain.queue, plain.max_attempts) == (2, "default", 4)
    with psycopg.connect(app.settings.database_url or "") as conn:
        row = conn.execute(
            "SELECT notify, run_at = created_at FROM nightcrew.jobs WHERE id = %s", (ids[8],)
        ).fetchone()
    assert row is not None and row[0]["on"] == ["failed"] and row[1] is True


def test_bulk_takes_a_model_payload_like_enqueue(app: App) -> None:
    register(app)
    single = app.get_job(app.enqueue("reports.weekly", Week(week=5)))
    (bulk_id,) = app.enqueue_many([{"type": "reports.weekly", "payload": Week(week=5)}])
    bulk = app.get_job(bulk_id)
    assert single is not None and bulk is not None and bulk.payload == single.payload == {"week": 5}


def nested(depth: int) -> object:
    """A JSON value of ``depth`` levels of arrays and objects."""
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("options", [{}, {"priority": 1}], ids=["fast-path", "with-options"])
def test_payload_nested_deeper_than_64_is_refused(app: App, options: dict[str, object]) -> None:
    register(app)
    deep = nested(65)
    with pytest.raises(EnqueueError, match=r"^payload .* nested deeper than 64 levels"):
        app.enqueue("reports.weekly", deep, **options)  # type: ignore[arg-type]
    with pytest.raises(EnqueueError, match=r"item 1: payload .* nested deeper than 64"):
        app.enqueue_many([{"type": "reports.weekly"},
                          {"type": "reports.weekly", "payload": deep, **options}])  # fmt: skip
    assert count_jobs(app.settings.database_url or "") == 0
    # 64 levels, and brackets inside strings, are fine.
    app.enqueue("reports.weekly", nested(64), **options)  # type: ignore[arg-type]
    app.enqueue_many([{"type": "reports.weekly", "payload": {"s": "[{" * 200}, **options}])
    assert count_jobs(app.settings.database_url or "") == 2


@pytest.mark.parametrize("bounds", [(5, 1), (1,), ("0", "9"), (0.5, 2), 7])
def test_a_bad_priority_range_is_refused_at_registration(app: App, bounds: object) -> None:
    with pytest.raises(ConfigurationError, match="priority_range must be a pair of integers"):
        app.job("reports.ranged", priority_range=bounds)(lambda ctx, payload: None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "too_deep"),
    [
        (nested(64), False),
        (nested(65), True),
        ([nested(63)] * 3 + [{"k": [1, 2]} for _ in range(100)], False),  # wide, not deep
        ({"s": "[{" * 100, "t": '\\"[[' * 50, "u": "\\" * 7, "v": nested(63)}, False),
        ({"s": '"\\', "v": nested(64)}, True),
        ({"s": "]}" * 100, "v": nested(64)}, True),  # closers in a string hide nothing
    ],
)  # fmt: skip
def test_json_depth_ignores_brackets_inside_strings(value: object, too_deep: bool) -> None:
    text = encode_json(value)
    assert json_too_deep(text) is too_deep
    assert json_too_deep(json.dumps(value, ensure_ascii=False, indent=1)) is too_deep


def test_a_job_without_options_is_the_job_build_job_makes() -> None:
    # plain_job (App.enqueue(type, payload)'s one-statement path) writes the columns
    # build_job would, from the type's defaults; anything else is left to build_job.
    app = App("postgresql://unused", strict_types=True)
    register(app)

    @app.job("mail.send", queue="mail", notify={"in_app": True}, timeout=2)
    async def send(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    for name, payload in (("reports.weekly", {"i": 1}), ("reports.typed", Week(week=3)),
                          ("reports.typed", {"week": 4}), ("mail.send", None)):  # fmt: skip
        params = plain_job(app.registry, name, payload)
        job = build_job(app.registry, name, payload)
        assert params is not None
        assert dict(zip(SIMPLE_PARAMS[1:], params[1:], strict=True)) == {
            "type": job.type,
            "queue": job.queue,
            "payload": job.payload_json,
            "priority": job.priority,
            "max_attempts": job.max_attempts,
            "timeout_seconds": job.timeout_seconds,
            "notify": job.notify_json,
        }
        assert params[0].version == 7 and params[0] != job.id
    assert plain_job(app.registry, "other.type", {}) is None  # unknown: build_job raises
    unknown = plain_job(app.registry, "other.type", {"a": 1}, strict_types=False)
    assert unknown is not None and unknown[1:] == (
        "other.type", "default", '{"a":1}', 0, 3, None, None
    )  # fmt: skip
    assert plain_job(app.registry, 5, {}) is None
    assert plain_job(app.registry, "", {}) is None
    with pytest.raises(PayloadValidationError):  # the payload is checked as build_job does
        plain_job(app.registry, "reports.typed", {"week": "x"})
    with pytest.raises(EnqueueError, match="NUL"):
        plain_job(app.registry, "reports.weekly", {"a": "\x00"})
    # A default build_job refuses leaves the job to build_job, which names the problem.
    app.registry["reports.weekly"].priority = 5000
    assert plain_job(app.registry, "reports.weekly", {}) is None
    with pytest.raises(EnqueueError, match="priority must be between"):
        app.enqueue("reports.weekly", {})


async def test_a_job_without_options_inside_the_callers_transaction(aapp: App) -> None:
    register(aapp)
    url = aapp.settings.database_url or ""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        async with await psycopg.AsyncConnection.connect(url) as conn:
            job_id = await aapp.aenqueue("reports.weekly", {"i": 1}, conn=conn)
            assert _wake_ups(listener) == []  # not committed yet
            await conn.commit()
            await aapp.aenqueue("reports.weekly", {"i": 2}, conn=conn)
            await conn.rollback()
        assert _wake_ups(listener) == ["default"]
    job = await aapp.aget_job(job_id)
    assert job is not None and job.payload == {"i": 1} and job.status is JobStatus.PENDING
    assert (job.priority, job.max_attempts, job.timeout_seconds) == (2, 4, 30)
    assert count_jobs(url) == 1


async def test_pooled_enqueues_reuse_one_cursor_and_survive_a_failed_statement(
    clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Single enqueues keep one cursor on each pooled connection (enqueue._kept_cursor): it
    # runs the statement again after a failure, and a prepared statement keeps working.
    from nightcrew.lifecycle import enqueue

    app = App(clean_db, migrate_on_start=False, pool_min_size=1, pool_max_size=1)
    register(app)
    try:
        first = [await app.aenqueue("reports.weekly", {"i": i}) for i in range(8)]
        first += [app.enqueue("reports.weekly", {"i": i}) for i in range(8)]
        taken = uuid7()
        monkeypatch.setattr(enqueue, "uuid7", lambda: taken)
        await app.aenqueue("reports.weekly", {"i": "a"})
        with pytest.raises(psycopg.errors.UniqueViolation):
            await app.aenqueue("reports.weekly", {"i": "b"})
        with pytest.raises(psycopg.errors.UniqueViolation):
            app.enqueue("reports.weekly", {"i": "c"})
        monkeypatch.undo()
        last = await app.aenqueue("reports.weekly", {"i": "d"}, priority=1)  # build_job's path
        after = [await app.aenqueue("reports.weekly", {"i": i}) for i in range(3)]
        async with (await app.apool()).connection() as conn:
            assert getattr(conn, enqueue._KEPT_CURSOR) is not None
        job = await app.aget_job(after[-1])
        assert job is not None and job.payload == {"i": 2} and job.priority == 2
        assert len({*first, taken, last, *after}) == 21 == count_jobs(clean_db)
    finally:
        await app.aclose()
