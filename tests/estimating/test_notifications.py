"""What estimating tells people, delivered for real: price spike alerts reach every admin
in-app and ``$ESTIMATING_ALERT_EMAIL`` by email (a real SMTP server, aiosmtpd), with rates
shown as money; the bulk price update's summary and email count items and catalogue rates
separately."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
import pytest

from estimating import prices
from estimating.app import ALERT_EMAIL_ENV, build_app
from nightcrew import App, JobStatus
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.conftest import FAST
from tests.estimating.helpers import catalogue, item, project, rates
from tests.notify.receivers import Mailbox, smtp_server


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
async def mail_app(est_clean: str, smtp: tuple[Mailbox, int]) -> AsyncIterator[App]:
    """The estimating App sending its emails to the real SMTP server."""
    _, port = smtp
    mail = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_tls": "none",
        "notify_backoff_seconds": 0.05,
        "dashboard_url": "https://dash.example.com",
    }
    app = build_app(est_clean, **FAST, **mail)
    yield app
    await app.aclose()


def keys(url: str) -> dict[str, str]:
    """Two admins and a user."""
    with psycopg.connect(url, autocommit=True) as sync:
        return {"root": create_key(sync, "root", admin=True)[1],
                "ops": create_key(sync, "ops", admin=True)[1],
                "alice": create_key(sync, "alice")[1]}  # fmt: skip


async def inbox(app: App, key: str) -> list[dict[str, Any]]:
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.get("/api/notifications",
                                  headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_a_price_spike_reaches_every_admin_in_app_and_the_alert_address_by_email(
    mail_app: App, est_clean: str, smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    box, _ = smtp
    monkeypatch.setenv(ALERT_EMAIL_ENV, "buyers@example.com")
    secrets = keys(est_clean)
    pool = await mail_app.apool()
    async with pool.connection() as conn:
        await catalogue(conn, materials=[("STEEL", "1000")])
        await item(conn, "BEAM", materials=[{"code": "STEEL", "quantity_per_unit": "1"}])
        await project(conn, "P1")
        # February at 1,000.00, March at 1,250.50: +25.05 %, a spike.
        await rates(conn, "P1", [("STEEL", "1000", "2026-01-01"), ("STEEL", "1250.50",
                                                                  "2026-03-01")])  # fmt: skip
        day = date(2026, 2, 1)
        while day < date(2026, 3, 1):
            await prices.capture_snapshot(conn, day, projects=False)
            day += timedelta(days=1)
    job_id = await mail_app.aenqueue("estimating.capture_price_snapshot", {"day": "2026-03-01"})
    await mail_app.worker().run_until_idle(timeout=30)
    job = await mail_app.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job
    message = "Steel prices up 25 % — review active estimates"
    for admin in ("root", "ops"):
        (note,) = await inbox(mail_app, secrets[admin])
        assert message in f"{note['title']} {note['body']}", (admin, note)
    assert await inbox(mail_app, secrets["alice"]) == []  # not an admin: not told
    (mail,) = box.messages
    assert mail["To"] == "buyers@example.com"
    assert message in mail["Subject"]
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    expected = "average rate 1,000.00 in the previous month, 1,250.50 this month (+25.05 %)"
    assert expected in text.get_content()
    assert expected in html.get_content()


async def test_the_bulk_update_summary_and_email_count_items_and_catalogue_rates_apart(
    mail_app: App, est_clean: str, smtp: tuple[Mailbox, int]
) -> None:
    box, _ = smtp
    secrets = keys(est_clean)
    pool = await mail_app.apool()
    async with pool.connection() as conn:
        await catalogue(conn, materials=[("STEEL", "100.00"), ("WIRE", "3.00"),
                                         ("PAINT", "9.00")])  # fmt: skip
        await item(
            conn,
            "REBAR",
            materials=[
                {"code": "STEEL", "quantity_per_unit": "1"},
                {"code": "WIRE", "quantity_per_unit": "0.1"},
            ],
        )
        await item(conn, "MESH", materials=[{"code": "STEEL", "quantity_per_unit": "2"}])
        await item(
            conn,
            "BEAM",
            materials=[
                {"code": "STEEL", "quantity_per_unit": "3"},
                {"code": "PAINT", "quantity_per_unit": "1"},
            ],
        )
    transport = httpx.ASGITransport(app=create_app(mail_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        started = await client.post(
            "/api/estimating/bulk-price-update",
            headers={"Authorization": f"Bearer {secrets['root']}"},
            json={"catalogue_codes": ["STEEL"], "percent": 10,
                  "notify_email": "buyer@example.com"},
        )  # fmt: skip
    assert started.status_code == 202, started.text
    await mail_app.worker().run_until_idle(timeout=30)
    job = await mail_app.aget_job(started.json()["id"])
    assert job is not None and job.status is JobStatus.COMPLETED, job
    summary = "3 items updated successfully (1 catalogue rate raised)"
    assert job.result["summary"] == summary  # one entry, STEEL, used by three items
    assert (job.result["items"], job.result["catalogue_rates"]) == (3, 1)
    (mail,) = box.messages
    assert mail["To"] == "buyer@example.com" and summary in mail["Subject"]
    text = mail.get_body(("plain",))
    assert text is not None and summary in text.get_content()
