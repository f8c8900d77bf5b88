"""The admin's email about dead letters (admin_email), against a real SMTP server: one email
per dead job, the 11th and later of a minute grouped into one email."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from nightcrew import App
from nightcrew.context import JobContext
from nightcrew.notify.dead_letters import DEAD_LETTER_JOB, mail_dead_letters
from tests.notify.receivers import Mailbox, free_port, smtp_server


@pytest.fixture
def dead_db(clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.deliveries, nightcrew.dead_letters, nightcrew.dead_letter_minutes,"
            " nightcrew.jobs"
        )
    return clean_db


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


def make_app(url: str, smtp_port: int, **extra: Any) -> App:
    settings: dict[str, Any] = {
        "migrate_on_start": False, "poll_seconds": 0.1, "maintenance_schedules": False,
        "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "smtp_tls": "none",
        "admin_email": "admin@example.com", "dashboard_url": "https://dash.example.com",
        "notify_timeout_seconds": 3,
    }  # fmt: skip
    settings.update(extra)
    app = App(url, **settings)

    @app.job("prices.update", max_attempts=1)
    async def update(ctx: JobContext, payload: Any) -> None:
        raise RuntimeError(f"supplier API said 503 for batch {payload.get('n')}")

    return app


def recorded(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT job_id, minute, seq FROM nightcrew.dead_letters ORDER BY minute, seq"
        ).fetchall()


def next_minute(url: str) -> datetime:
    """A moment after every recorded dead letter's minute has ended."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(minute) FROM nightcrew.dead_letters").fetchone()
    assert row is not None and row[0] is not None
    return row[0] + timedelta(minutes=1, seconds=1)


async def test_one_dead_job_makes_one_email_with_its_type_error_and_link(
    dead_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = make_app(dead_db, port)
    try:
        job_id = await app.aenqueue("prices.update", {"n": 7})
        await app.worker().run_until_idle(timeout=30)  # a real worker dead-letters it
        [(recorded_id, _minute, seq)] = recorded(dead_db)
        assert (recorded_id, seq) == (job_id, 1)
        # While its minute lasts nothing is sent (the minute may still get more).
        assert (await mail_dead_letters(app))["emails"] == {}
        assert box.messages == []
        done = await mail_dead_letters(app, now=next_minute(dead_db))
        assert done["emails"] == {f"dead:{job_id}": "sent"}
        [mail] = box.messages
        assert mail["To"] == "admin@example.com"
        assert mail["Subject"].strip().startswith("[nightcrew] dead letter: prices.update: ")
        assert "supplier API said 503 for batch 7" in mail["Subject"]
        body = mail.get_body(("plain",))
        assert body is not None
        text = body.get_content()
        assert "Type:   prices.update" in text and "supplier API said 503 for batch 7" in text
        assert f"https://dash.example.com/jobs/{job_id}" in text
        assert recorded(dead_db) == []  # mailed: forgotten
        # Another run sends nothing again.
        later = datetime.now(UTC) + timedelta(minutes=2)
        assert (await mail_dead_letters(app, now=later))["emails"] == {}
        assert len(box.messages) == 1
    finally:
        await app.aclose()


async def test_fifteen_in_a_minute_make_ten_single_emails_then_one_grouped(
    dead_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = make_app(dead_db, port)
    try:
        ids = app.enqueue_many([{"type": "prices.update", "payload": {"n": i}}
                                for i in range(15)])  # fmt: skip
        # All die in one statement (one minute for sure), in id order, as a worker's
        # batched outcomes would.
        with psycopg.connect(dead_db, autocommit=True) as conn:
            conn.execute(
                "UPDATE nightcrew.jobs SET status = 'processing', attempts = 1,"
                " started_at = now() WHERE id = ANY(%s)", (ids,))  # fmt: skip
            conn.execute(
                "UPDATE nightcrew.jobs SET status = 'failed', completed_at = now(),"
                " error = 'RuntimeError: batch ' || (payload ->> 'n') WHERE id = ANY(%s)",
                (ids,),
            )
        rows = recorded(dead_db)
        assert [seq for _, _, seq in rows] == list(range(1, 16))
        done = await mail_dead_letters(app, now=next_minute(dead_db))
        assert list(done["emails"].values()) == ["sent"] * 11
        assert len(box.messages) == 11
        singles, grouped = box.messages[:10], box.messages[10]
        single_ids = {str(row[0]) for row in rows[:10]}
        for mail in singles:
            assert mail["Subject"].startswith("[nightcrew] dead letter: prices.update")
        texts = [m.get_body(("plain",)).get_content() for m in singles]  # type: ignore[union-attr]
        assert {next(i for i in single_ids if i in t) for t in texts} == single_ids
        assert grouped["Subject"].startswith("[nightcrew] 5 more dead letters in the minute of")
        listing = grouped.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        for job_id, _, _ in rows[10:]:
            assert f"https://dash.example.com/jobs/{job_id}" in listing
        assert not any(f"/jobs/{i}" in listing for i in single_ids)
        assert recorded(dead_db) == []
    finally:
        await app.aclose()


async def test_with_the_mail_server_down_the_next_run_sends_and_never_twice(
    dead_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    down = make_app(dead_db, free_port())  # nothing listens there
    job_id = await down.aenqueue("prices.update", {"n": 1})
    await down.worker().run_until_idle(timeout=30)
    later = next_minute(dead_db)
    try:
        first = await mail_dead_letters(down, now=later)
        assert first["pending"] == [f"dead:{job_id}"] and len(recorded(dead_db)) == 1
    finally:
        await down.aclose()
    up = make_app(dead_db, port)
    try:
        await mail_dead_letters(up, now=later + timedelta(minutes=1))
        await mail_dead_letters(up, now=later + timedelta(minutes=2))
        assert len(box.messages) == 1 and recorded(dead_db) == []
    finally:
        await up.aclose()


async def test_without_admin_email_dead_letters_are_only_forgotten(
    dead_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = make_app(dead_db, port, admin_email=None)
    try:
        await app.aenqueue("prices.update", {"n": 1})
        await app.worker().run_until_idle(timeout=30)
        assert len(recorded(dead_db)) == 1
        assert (await mail_dead_letters(app, now=next_minute(dead_db)))["emails"] == {}
        assert box.messages == [] and recorded(dead_db) == []
    finally:
        await app.aclose()


def test_the_dead_letter_mail_is_a_built_in_schedule_every_minute(dead_db: str) -> None:
    app = App(dead_db, migrate_on_start=False, admin_email="admin@example.com")
    schedule = app.schedules.definitions[DEAD_LETTER_JOB]
    assert schedule.every == timedelta(minutes=1)
    assert DEAD_LETTER_JOB in app.registry
    with pytest.raises(ValueError, match="admin_email must be an email address"):
        App(dead_db, migrate_on_start=False, admin_email="not an address")
