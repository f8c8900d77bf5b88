"""Where webhooks may go (no loopback, private, link-local or metadata address unless
allowed; hosts an admin allowed for webhooks set over the HTTP API) and whose key signs
them (each user's own). Real receivers, a real Postgres, a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn

from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.notify.webhooks import verify
from tests.notify.receivers import Receiver, free_port, http_receiver
from tests.notify.test_notify import SECRET, deliveries, make_app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with http_receiver() as r:
        yield r


@pytest.fixture
def notify_db(clean_db: str) -> str:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.deliveries, nightcrew.api_keys, nightcrew.dashboard_sessions"
        )
    return clean_db


async def test_webhooks_to_non_public_addresses_are_refused_after_resolving(
    notify_db: str, receiver: Receiver
) -> None:
    app = make_app(notify_db, webhook_allow_private=False)  # the default
    port = receiver.url.split(":")[2].split("/")[0]
    targets = [
        receiver.url,  # 127.0.0.1
        f"http://localhost:{port}/hook",  # a name that resolves to loopback
        f"http://[::1]:{port}/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/hook",
    ]
    try:
        for target in targets:
            await app.aenqueue("sync.items", {}, notify={"webhook": target})
        await app.worker().run_until_idle(timeout=30)
        rows = await deliveries(app)
        assert len(rows) == len(targets)
        for row in rows:  # refused for good: not retried
            assert (row["status"], row["attempts"]) == ("failed", 1), row
            assert "refused" in row["last_error"] and "webhook_allow_private" in row["last_error"]
        assert receiver.requests == []
    finally:
        await app.aclose()


@pytest.fixture
async def served(
    notify_db: str, receiver: Receiver
) -> AsyncIterator[tuple[App, httpx.AsyncClient, dict[str, str]]]:
    """An HTTP API whose admin allows webhooks to 127.0.0.1 (the receiver) only."""
    with psycopg.connect(notify_db, autocommit=True) as conn:
        keys = {user: create_key(conn, user)[1] for user in ("alice", "bob")}
    app = make_app(notify_db, webhook_hosts=["127.0.0.1"])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield app, client, keys
    finally:
        server.should_exit = True
        await task
        await app.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def post_job(client: httpx.AsyncClient, key: str, webhook: str) -> httpx.Response:
    body = {"type": "sync.items", "notify": {"webhook": webhook}}
    return await client.post("/api/jobs", json=body, headers=bearer(key))


async def test_http_webhooks_only_reach_hosts_an_admin_allowed(
    served: tuple[App, httpx.AsyncClient, dict[str, str]], receiver: Receiver
) -> None:
    app, client, keys = served
    refused = await post_job(client, keys["alice"], "https://internal.example.com/x")
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["field"] == "notify.webhook"
    assert "host 'internal.example.com' is not allowed" in error["message"]
    assert "NIGHTCREW_WEBHOOK_HOSTS" in error["message"]

    app.settings = app.settings.model_copy(update={"webhook_hosts": []})  # the default
    none_allowed = await post_job(client, keys["alice"], receiver.url)
    assert none_allowed.status_code == 422 and "not allowed" in none_allowed.text

    app.settings = app.settings.model_copy(
        update={"webhook_hosts": ["*"], "webhook_allow_private": False}
    )
    private = await post_job(client, keys["alice"], "http://10.1.2.3/hook")
    assert private.status_code == 422
    assert "10.1.2.3 is a private address" in private.json()["error"]["message"]

    # Trusted code (no HTTP) may still target any public host.
    await app.aenqueue("sync.items", {}, notify={"webhook": "https://hooks.example.org/x"})


async def test_http_webhook_is_checked_again_when_sent(
    served: tuple[App, httpx.AsyncClient, dict[str, str]], receiver: Receiver
) -> None:
    app, client, keys = served
    accepted = await post_job(client, keys["alice"], receiver.url)
    assert accepted.status_code == 202
    job = await app.aget_job(accepted.json()["id"])
    assert job is not None
    app.settings = app.settings.model_copy(update={"webhook_hosts": []})  # admin revokes it
    await app.worker().run_until_idle(timeout=30)
    [row] = await deliveries(app)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "not in webhook_hosts" in row["last_error"]
    assert receiver.requests == []


async def test_webhooks_about_a_users_job_are_signed_with_that_users_key(
    served: tuple[App, httpx.AsyncClient, dict[str, str]], receiver: Receiver
) -> None:
    app, client, keys = served
    assert (await post_job(client, keys["alice"], receiver.url)).status_code == 202
    await app.worker().run_until_idle(timeout=30)
    [request] = receiver.requests
    assert json.loads(request.body)["job"]["user_id"] == "alice"
    ts, sig = request.headers["X-Nightcrew-Timestamp"], request.headers["X-Nightcrew-Signature"]

    async def secret_of(user: str) -> str:
        answer = await client.get("/api/notifications/webhook-secret", headers=bearer(keys[user]))
        assert answer.status_code == 200
        assert answer.headers["cache-control"] == "no-store"
        body: dict[str, Any] = answer.json()
        assert body["user_id"] == user and body["algorithm"] == "HMAC-SHA256"
        return str(body["secret"])

    alice, bob = await secret_of("alice"), await secret_of("bob")
    assert verify(alice, request.body, ts, sig)
    # Bob's receiver (or one checking the installation's master key) rejects alice's body:
    # a user can't replay bodies signed for them to someone else's receiver.
    assert not verify(bob, request.body, ts, sig)
    assert not verify(SECRET, request.body, ts, sig)
    unauthenticated = await client.get("/api/notifications/webhook-secret")
    assert unauthenticated.status_code == 401
