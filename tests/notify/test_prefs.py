"""Per-user notification preferences (GET/PUT /api/me/notifications) and jobs enqueued with
notify="owner", over a real uvicorn server, SMTP server (aiosmtpd) and HTTP receiver."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from nightcrew import App
from nightcrew.context import JobContext
from nightcrew.errors import EnqueueError
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.notify.webhooks import user_secret, verify
from tests.notify.receivers import Mailbox, Receiver, free_port, http_receiver, smtp_server

SECRET = "prefs-master-secret"


@dataclass
class Served:
    app: App
    url: str
    keys: dict[str, str]
    box: Mailbox
    hook: Receiver

    def client(self, who: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
async def served(
    clean_db: str, smtp: tuple[Mailbox, int], receiver: Receiver
) -> AsyncIterator[Served]:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.notifications, nightcrew.api_keys, nightcrew.deliveries,"
            " nightcrew.notification_prefs, nightcrew.dashboard_sessions, nightcrew.jobs"
        )
        keys = {user: create_key(conn, user)[1] for user in ("alice", "bob")}
    box, smtp_port = smtp
    app = App(
        clean_db, migrate_on_start=False, poll_seconds=0.1, maintenance_schedules=False,
        smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="none", webhook_secret=SECRET,
        webhook_hosts=["127.0.0.1"], webhook_allow_private=True, notify_backoff_seconds=0.05,
        dashboard_url="https://dash.example.com",
    )  # fmt: skip

    @app.job("t.work")
    async def work(ctx: JobContext, payload: Any) -> Any:
        if payload.get("fail"):
            raise RuntimeError("the supplier API said 503")
        return {"summary": "42 prices updated"}

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield Served(app, f"http://127.0.0.1:{port}", keys, box, receiver)
    finally:
        server.should_exit = True
        await task
        await app.aclose()


async def test_preferences_default_to_nothing_and_are_each_users_own(served: Served) -> None:
    async with served.client("alice") as alice, served.client("bob") as bob:
        got = (await alice.get("/api/me/notifications")).json()
        assert got == {
            "user_id": "alice",
            "email": None,
            "webhook": None,
            "channels": {"completed": [], "failed": []},
            "updated_at": None,
        }
        put = await alice.put(
            "/api/me/notifications",
            json={"email": "alice@example.com", "channels": {"failed": ["email", "in_app"]}},
        )
        assert put.status_code == 200, put.text
        assert put.json()["channels"] == {"completed": [], "failed": ["email", "in_app"]}
        assert (await alice.get("/api/me/notifications")).json()["email"] == "alice@example.com"
        # Bob sees his own (defaults), never alice's.
        assert (await bob.get("/api/me/notifications")).json()["email"] is None
    async with httpx.AsyncClient(base_url=served.url) as anonymous:
        assert (await anonymous.get("/api/me/notifications")).status_code == 401


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"email": "not-an-address"}, "email", "must be an email address"),
        ({"webhook": "https://evil.example.net/x"}, "webhook", "host 'evil.example.net' is not"),
        ({"webhook": "ftp://127.0.0.1/x"}, "webhook", "http:// or https://"),
        ({"channels": {"completed": ["email"]}}, "email", "give an address"),
        ({"channels": {"failed": ["webhook"]}}, "webhook", "give an address"),
        ({"channels": {"failed": ["sms"]}}, "channels.failed.0", "channels.failed.0"),
        ({"channels": {"cancelled": ["email"]}}, "channels.cancelled", "Extra inputs"),
        ({"emails": "a@example.com"}, "emails", "Extra inputs"),
        ({"email": 5}, "email", "string"),
    ],
)  # fmt: skip
async def test_bad_preferences_are_a_422_naming_the_field(
    served: Served, body: dict[str, Any], field: str, words: str
) -> None:
    async with served.client("alice") as alice:
        answer = await alice.put("/api/me/notifications", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field and words in error["message"], error


async def test_a_private_webhook_address_is_refused_without_allow_private(
    clean_db: str,
) -> None:
    from nightcrew.notify.prefs import PrefsError, clean_prefs

    settings = App(clean_db, migrate_on_start=False, webhook_hosts=["*"]).settings
    with pytest.raises(PrefsError, match=r"10\.0\.0\.7 is a private address") as refused:
        clean_prefs(None, "http://10.0.0.7/hook", {}, settings)
    assert refused.value.field == "webhook"


async def test_owner_jobs_notify_by_the_owners_preferences(served: Served) -> None:
    hook = f"{served.hook.url}/alice"
    async with served.client("alice") as alice:
        put = await alice.put(
            "/api/me/notifications",
            json={
                "email": "alice@example.com",
                "webhook": hook,
                "channels": {"completed": ["in_app"], "failed": ["email", "webhook"]},
            },
        )
        assert put.status_code == 200, put.text
        ok = (await alice.post("/api/jobs", json={"type": "t.work", "notify": "owner"})).json()
        bad = (
            await alice.post(
                "/api/jobs",
                json={
                    "type": "t.work",
                    "payload": {"fail": True},
                    "max_attempts": 1,
                    "notify": "owner",
                },
            )
        ).json()
    # In Python too, for a job with a user.
    py_ok = await served.app.aenqueue("t.work", {}, user_id="alice", notify="owner")
    with pytest.raises(EnqueueError, match="notify='owner' needs the job's user_id"):
        await served.app.aenqueue("t.work", {}, notify="owner")
    await served.app.worker().run_until_idle(timeout=30)
    # completed -> in-app only (twice: the HTTP job and the Python one); nothing mailed for them.
    async with served.client("alice") as alice:
        inbox = (await alice.get("/api/notifications")).json()["items"]
    assert sorted(n["job_id"] for n in inbox) == sorted([ok["id"], str(py_ok)])
    # failed -> one email and one signed webhook, signed with alice's own key.
    [mail] = served.box.messages
    assert mail["To"] == "alice@example.com" and "t.work failed" in mail["Subject"]
    assert bad["id"] in mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    [received] = served.hook.ok()
    assert json.loads(received.body)["job"]["id"] == bad["id"]
    alice_key = user_secret(SECRET, "alice")
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert verify(alice_key, received.body, headers["x-nightcrew-timestamp"],
                  headers["x-nightcrew-signature"])  # fmt: skip
    assert not verify(SECRET, received.body, headers["x-nightcrew-timestamp"],
                      headers["x-nightcrew-signature"])  # fmt: skip


async def test_a_webhook_host_no_longer_allowed_is_not_sent_to(served: Served) -> None:
    async with served.client("alice") as alice:
        await alice.put(
            "/api/me/notifications",
            json={"webhook": f"{served.hook.url}/alice", "channels": {"completed": ["webhook"]}},
        )
        await alice.post("/api/jobs", json={"type": "t.work", "notify": "owner"})
    served.app.settings.webhook_hosts = ["hooks.example.com"]  # the admin took it back
    await served.app.worker().run_until_idle(timeout=30)
    assert served.hook.requests == []
    async with (await served.app.apool()).connection() as conn:
        cur = await conn.execute("SELECT status, last_error FROM nightcrew.deliveries")
        [(status, error)] = await cur.fetchall()
    assert status == "failed" and "not in webhook_hosts" in error


async def test_notify_is_a_dict_or_owner_over_http(served: Served) -> None:
    async with served.client("alice") as alice:
        answer = await alice.post("/api/jobs", json={"type": "t.work", "notify": "everyone"})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["field"] == "notify" and "owner" in error["message"], error


def test_row_level_security_keeps_each_users_preferences_their_own(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.notification_prefs")
        conn.execute("INSERT INTO nightcrew.notification_prefs (user_id, email)"
                     " VALUES ('alice', 'alice@example.com')")  # fmt: skip
    with psycopg.connect(clean_db) as conn:  # one transaction acting as bob, as the API does
        conn.execute("SET LOCAL ROLE nightcrew_api")
        conn.execute("SELECT set_config('nightcrew.user_id', 'bob', true)")
        assert conn.execute("SELECT count(*) FROM nightcrew.notification_prefs").fetchone() == (0,)
        changed = conn.execute("UPDATE nightcrew.notification_prefs SET email = 'x@evil.test'")
        assert changed.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("INSERT INTO nightcrew.notification_prefs (user_id, webhook)"
                         " VALUES ('alice', 'https://evil.test/')")  # fmt: skip
    with psycopg.connect(clean_db) as conn:
        row = conn.execute("SELECT email, webhook FROM nightcrew.notification_prefs").fetchone()
    assert row == ("alice@example.com", None)
