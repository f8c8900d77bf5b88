"""How a delivery attempt uses the database and time: claim, send with no connection held
and within one deadline, record; a claim left by a crashed attempt holds off resends until it
expires. Real receivers (a slow HTTP server, a stalling SMTP server), a real Postgres."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from nightcrew import App, Worker
from nightcrew.notify.handler import deliver, load_job_event
from tests.notify.receivers import Mailbox, Receiver, http_receiver, smtp_server
from tests.notify.test_notify import deliveries, make_app
from tests.support import await_until


@pytest.fixture
def notify_db(clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.deliveries, nightcrew.notifications, nightcrew.alerts")
    return clean_db


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """``worker`` runs in the background for the block, then stops (its jobs drained)."""
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def first_row(app: App) -> dict[str, Any] | None:
    rows = await deliveries(app)
    return rows[0] if rows else None


async def test_no_pool_connection_is_held_while_a_webhook_waits_for_its_answer(
    notify_db: str, receiver: Receiver
) -> None:
    receiver.delay = 6  # far longer than a database transaction should ever stay open
    app = make_app(notify_db, pool_min_size=1, pool_max_size=1, notify_timeout_seconds=3)
    try:
        await app.aenqueue("sync.items", {}, notify={"webhook": receiver.url})
        async with running(app.worker()):
            await await_until(lambda: _true(receiver.requests), 20, "the webhook to arrive")
            pool = await app.apool()
            # The pool's only connection is free although the POST is still waiting.
            async with pool.connection(timeout=1.5) as conn:
                await conn.execute("SELECT 1")
    finally:
        receiver.closing.set()
        await app.aclose()


async def test_a_slow_receiver_is_given_up_at_the_deadline_and_retried(
    notify_db: str, receiver: Receiver
) -> None:
    receiver.delay = 8  # answers within webhook socket timeouts, but past the deadline
    app = make_app(notify_db, notify_timeout_seconds=1.5)
    try:
        await app.aenqueue("sync.items", {}, notify={"webhook": receiver.url})
        async with running(app.worker()):
            await await_until(lambda: _true(receiver.requests), 20, "the webhook to arrive")
            arrived = time.monotonic()
            await await_until(lambda: attempted(app), 7, "the first attempt to be recorded")
            assert time.monotonic() - arrived < 6  # at the 1.5 s deadline, not at the answer
            row = await first_row(app)
            assert row is not None and row["status"] == "pending"
            assert "no answer within notify_timeout_seconds (1.5 s)" in row["last_error"]
            receiver.delay = 0  # the receiver recovers: the retry gets through
            await await_until(lambda: sent(app), 20, "the retried delivery to be sent")
        assert len({r.headers["X-Nightcrew-Delivery"] for r in receiver.requests}) == 1
    finally:
        receiver.closing.set()
        await app.aclose()


async def test_a_stalling_mail_server_is_given_up_at_the_deadline_and_retried(
    notify_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    box.stall = 8  # within smtp_timeout_seconds (30 s per command), past the deadline
    app = make_app(notify_db, port, notify_timeout_seconds=1.5)
    try:
        await app.aenqueue("sync.items", {}, notify={"email": "ops@example.com"})
        async with running(app.worker()):
            await await_until(lambda: _true(box.stalled), 20, "the mail to reach the server")
            stalled_at = time.monotonic()
            await await_until(lambda: attempted(app), 7, "the first attempt to be recorded")
            assert time.monotonic() - stalled_at < 6  # at the 1.5 s deadline, not after it
            row = await first_row(app)
            assert row is not None and row["status"] == "pending"
            assert "no answer within notify_timeout_seconds (1.5 s)" in row["last_error"]
            box.stall = 0
            await await_until(lambda: sent(app), 30, "the retried email to be sent")
    finally:
        await app.aclose()


async def attempted(app: App) -> bool:
    row = await first_row(app)
    return row is not None and row["attempts"] >= 1


async def sent(app: App) -> bool:
    row = await first_row(app)
    return row is not None and row["status"] == "sent"


async def test_a_claim_left_by_a_crashed_attempt_holds_off_resends_until_it_expires(
    notify_db: str, receiver: Receiver
) -> None:
    app = make_app(notify_db)
    try:
        await app.aenqueue("sync.items", {}, notify={"webhook": receiver.url})
        await app.worker(queues=["default"]).run_until_idle(timeout=30)  # not the delivery
        pool = await app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT payload FROM nightcrew.jobs WHERE type = 'nightcrew.notify'"
            )
            [(payload,)] = await cur.fetchall()
            # An attempt claimed the delivery, sent it, and died before recording it.
            await conn.execute(
                "INSERT INTO nightcrew.deliveries (event_key, channel, target, claim,"
                " claimed_until) VALUES (%s, 'webhook', %s, gen_random_uuid(),"
                " now() + interval '1 hour')",
                (payload["event_key"], receiver.url),
            )
        event = await load_job_event(app, payload)
        assert event is not None
        assert await deliver(app, event, "webhook", receiver.url, last_try=False) == "pending"
        assert receiver.requests == []  # the claim is live: no resend
        async with pool.connection() as conn:
            await conn.execute(
                "UPDATE nightcrew.deliveries SET claimed_until = now() - interval '1 second'"
            )
        assert await deliver(app, event, "webhook", receiver.url, last_try=False) == "sent"
        assert await deliver(app, event, "webhook", receiver.url, last_try=False) == "sent"
        assert len(receiver.requests) == 1  # the expired claim is taken over once
        [row] = await deliveries(app)
        assert (row["status"], row["attempts"]) == ("sent", 1)
    finally:
        await app.aclose()


def _true(value: object) -> Any:
    """An awaitable of ``bool(value)`` for :func:`await_until`."""

    async def check() -> bool:
        return bool(value)

    return check()
