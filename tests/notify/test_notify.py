"""Completion notifications against a real SMTP server (aiosmtpd) and a real HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from nightcrew import App
from nightcrew.context import JobContext
from nightcrew.errors import ConfigurationError, EnqueueError
from nightcrew.notify.render import EmailTemplate
from nightcrew.notify.webhooks import verify
from tests.notify.receivers import Mailbox, Receiver, http_receiver, smtp_server

SECRET = "s3cret-for-tests"


@pytest.fixture
def notify_db(clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.deliveries, nightcrew.notifications, nightcrew.alerts")
    return clean_db


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


def make_app(url: str, smtp_port: int | None = None, **extra: Any) -> App:
    settings: dict[str, Any] = {
        "migrate_on_start": False,
        "poll_seconds": 0.1,
        "lease_seconds": 5,
        "heartbeat_seconds": 1,
        "webhook_secret": SECRET,
        "webhook_allow_private": True,  # the receivers listen on 127.0.0.1
        "notify_backoff_seconds": 0.05,
        "dashboard_url": "https://dash.example.com",
        "maintenance_schedules": False,
    }
    if smtp_port is not None:
        settings.update(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="none")
    settings.update(extra)
    app = App(url, **settings)

    @app.job("sync.items")
    async def sync_items(ctx: JobContext, payload: Any) -> dict[str, Any]:
        if payload.get("fail"):
            raise RuntimeError("upstream said no")
        return {"summary": f"{payload.get('n', 100)} items updated successfully"}

    return app


async def deliveries(app: App) -> list[dict[str, Any]]:
    pool = await app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT channel, target, status, attempts, last_status_code, last_error"
            " FROM nightcrew.deliveries ORDER BY channel"
        )
        cols = [c.name for c in cur.description or []]
        return [dict(zip(cols, row, strict=True)) for row in await cur.fetchall()]


async def test_email_arrives_with_the_job_summary(
    notify_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = make_app(notify_db, port)
    try:
        job_id = await app.aenqueue("sync.items", {"n": 100}, notify={"email": "ops@example.com"})
        await app.worker().run_until_idle(timeout=30)
        assert len(box.messages) == 1
        message = box.messages[0]
        assert message["To"] == "ops@example.com"
        assert "sync.items completed: 100 items updated successfully" in message["Subject"]
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        assert text is not None and html is not None
        assert "100 items updated successfully" in text.get_content()
        assert "Duration:" in text.get_content()
        assert f"https://dash.example.com/jobs/{job_id}" in text.get_content()
        assert f'href="https://dash.example.com/jobs/{job_id}"' in html.get_content()
        [row] = await deliveries(app)
        assert (row["channel"], row["status"], row["attempts"]) == ("email", "sent", 1)
    finally:
        await app.aclose()


async def test_job_type_template_and_default_notify(
    notify_db: str, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    app = make_app(notify_db, port)
    template = EmailTemplate(
        subject="Report {{ job.status }}",
        text="Done: {{ job.summary }}",
        html="<b>{{ job.summary }}</b>",
    )

    @app.job("report", notify={"email": "boss@example.com"}, notify_template=template)
    async def report(ctx: JobContext, payload: Any) -> dict[str, Any]:
        return {"summary": "<3 rows>"}

    try:
        await app.aenqueue("report")  # the type's default notify applies
        await app.aenqueue_many([{"type": "report"}, {"type": "sync.items"}])
        await app.worker().run_until_idle(timeout=30)
        assert sorted(m["To"] for m in box.messages) == ["boss@example.com"] * 2
        message = box.messages[0]
        assert message["Subject"] == "Report completed"
        assert message.get_body(("plain",)).get_content().strip() == "Done: <3 rows>"  # type: ignore[union-attr]
        assert "<b>&lt;3 rows&gt;</b>" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    finally:
        await app.aclose()


async def test_webhook_is_signed_and_a_tampered_one_fails(
    notify_db: str, receiver: Receiver
) -> None:
    app = make_app(notify_db)
    try:
        job_id = await app.aenqueue("sync.items", {"n": 7}, notify={"webhook": receiver.url})
        await app.worker().run_until_idle(timeout=30)
        [request] = receiver.requests
        body, headers = request.body, request.headers
        payload = json.loads(body)
        assert payload["type"] == "job.completed"
        assert payload["job"]["id"] == str(job_id)
        assert payload["job"]["summary"] == "7 items updated successfully"
        ts, sig = headers["X-Nightcrew-Timestamp"], headers["X-Nightcrew-Signature"]
        # The five-line receiver check of docs/notifications.md:
        expected = (
            "sha256="
            + hmac.new(SECRET.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        assert hmac.compare_digest(expected, sig) and abs(time.time() - int(ts)) < 300
        assert verify(SECRET, body, ts, sig)
        tampered = body.replace(b"7 items", b"8 items")
        assert not verify(SECRET, tampered, ts, sig)
        assert not verify("wrong-secret", body, ts, sig)
        assert not verify(SECRET, body, str(int(ts) + 1), sig)  # timestamp is signed too
        assert not verify(SECRET, body, ts, sig, now=int(ts) + 3600)  # a replay, too late
    finally:
        await app.aclose()


async def test_receiver_failing_twice_gets_the_delivery_on_the_third_try(
    notify_db: str, receiver: Receiver
) -> None:
    receiver.script = [500, 500]
    app = make_app(notify_db)
    try:
        job_id = await app.aenqueue("sync.items", {}, notify={"webhook": receiver.url})
        await app.worker().run_until_idle(timeout=30)
        await app.worker().run_until_idle(timeout=30)  # retries wait out their backoff
        for _ in range(200):
            if receiver.ok():
                break
            await app.worker().run_until_idle(timeout=30)
        assert [r.status for r in receiver.requests] == [500, 500, 200]
        assert len({r.headers["X-Nightcrew-Delivery"] for r in receiver.requests}) == 1
        [row] = await deliveries(app)
        assert (row["status"], row["attempts"], row["last_status_code"]) == ("sent", 3, 200)
        job = await app.aget_job(job_id)
        assert job is not None and job.status == "completed"  # never held back by delivery
    finally:
        await app.aclose()


async def test_a_retry_after_an_smtp_failure_does_not_resend_the_webhook(
    notify_db: str, smtp: tuple[Mailbox, int], receiver: Receiver
) -> None:
    box, port = smtp
    box.refuse = 1  # the mail server says "try later" once
    app = make_app(notify_db, port)
    try:
        await app.aenqueue(
            "sync.items",
            {"fail": True},
            max_attempts=1,
            notify={"email": "ops@example.com", "webhook": receiver.url},
        )
        for _ in range(200):
            await app.worker().run_until_idle(timeout=30)
            if box.messages:
                break
        assert box.refused == 1 and len(box.messages) == 1
        assert "upstream said no" in box.messages[0]["Subject"]
        assert len(receiver.requests) == 1  # sent once, on the first try only
        assert json.loads(receiver.requests[0].body)["type"] == "job.failed"
        rows = {r["channel"]: r for r in await deliveries(app)}
        assert (rows["email"]["status"], rows["email"]["attempts"]) == ("sent", 2)
        assert (rows["webhook"]["status"], rows["webhook"]["attempts"]) == ("sent", 1)
    finally:
        await app.aclose()


async def test_in_app_notification_and_event_filter(notify_db: str) -> None:
    app = make_app(notify_db)
    try:
        await app.aenqueue("sync.items", {"n": 3}, user_id="alice", notify={"in_app": True})
        cancelled = await app.aenqueue(
            "sync.items", {}, user_id="alice", delay=3600, notify={"in_app": True}
        )
        told = await app.aenqueue(
            "sync.items",
            {},
            user_id="alice",
            delay=3600,
            notify={"in_app": True, "on": ["cancelled"]},
        )
        assert await app.acancel(cancelled) and await app.acancel(told)
        await app.worker().run_until_idle(timeout=30)
        pool = await app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT user_id, kind, title, job_id FROM nightcrew.notifications ORDER BY id"
            )
            rows = await cur.fetchall()
        by_kind = {r[1]: r for r in rows}
        assert len(rows) == 2 and {r[0] for r in rows} == {"alice"}
        assert by_kind["job.completed"][2] == "sync.items completed: 3 items updated successfully"
        assert by_kind["job.cancelled"][3] == told  # only the job that asked for "cancelled"
    finally:
        await app.aclose()


async def test_jobs_without_notify_create_no_notification_job(notify_db: str) -> None:
    app = make_app(notify_db)
    try:
        await app.aenqueue_many([{"type": "sync.items"} for _ in range(50)])
        await app.worker().run_until_idle(timeout=30)
        pool = await app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT type, count(*) FROM nightcrew.jobs GROUP BY 1")
            assert await cur.fetchall() == [("sync.items", 50)]
    finally:
        await app.aclose()


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ("ops@example.com", "notify must be a dict"),
        ({"emial": "x@y.z"}, r"notify: unknown keys \['emial'\]"),
        ({"email": "not-an-address"}, "notify.email must be an email address"),
        ({"webhook": "ftp://example.com/x"}, r"notify.webhook must be an http:// or https://"),
        ({"webhook": "http://host:99999/"}, "notify.webhook is not a valid URL"),
        ({"in_app": "yes"}, "notify.in_app must be true or false"),
        ({"in_app": True, "on": ["done"]}, r"notify.on: unknown events \['done'\]"),
    ],
)
def test_bad_notify_is_refused_with_a_clear_error(app: App, notify: Any, message: str) -> None:
    app.job("t.n")(lambda ctx, payload: None)
    with pytest.raises(EnqueueError, match=message):
        app.enqueue("t.n", notify=notify)
    with pytest.raises(EnqueueError, match="item 0: " + message):
        app.enqueue_many([{"type": "t.n", "notify": notify}])
    with pytest.raises(ConfigurationError, match=message):
        app.job("t.bad", notify=notify)(lambda ctx, payload: None)


def test_notify_is_stored_by_single_and_bulk_enqueue(app: App) -> None:
    app.job("t.n")(lambda ctx, payload: None)
    notify = {"email": "a@b.co", "webhook": "http://127.0.0.1:1/x\ty", "on": ["failed"]}
    one = app.enqueue("t.n", notify=notify)
    many = app.enqueue_many(
        [{"type": "t.n", "notify": notify}, {"type": "t.n", "notify": notify, "dedupe_key": "k"}]
    )
    with app.pool().connection() as conn:
        rows = conn.execute(
            "SELECT notify FROM nightcrew.jobs WHERE id = ANY(%s)", ([one, *many],)
        ).fetchall()
    assert [row[0] for row in rows] == [notify] * 3
