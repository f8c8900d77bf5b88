"""Concurrent ``POST /api/jobs`` of one API key share one transaction (one commit, one
NOTIFY per queue), and nothing else changes for a request: its own answer, its own 422,
the key checked in that transaction, keys never mixed (docs/security.md)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.http.enqueue_batches import enqueue_batches
from nightcrew.keys import create_key, hash_key, revoke_key


@dataclass
class Api:
    app: App
    client: httpx.AsyncClient
    db_url: str
    keys: dict[str, str]

    async def post(self, who: str, body: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[who]}",
                   "Content-Type": "application/json"}  # fmt: skip
        return await self.client.post("/api/jobs", content=json.dumps(body), headers=headers)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []

    async def held(self, requests: list[Awaitable[httpx.Response]]) -> list[httpx.Response]:
        """Send ``requests`` while the pool's only connection is taken, so they all wait
        for it; give it back once every one of them waits; their answers."""
        pool = await self.app.apool()
        async with pool.connection():
            tasks = [asyncio.ensure_future(request) for request in requests]
            batches = enqueue_batches(self.app)
            async with asyncio.timeout(10):
                while batches.waiting() < len(tasks):
                    await asyncio.sleep(0.01)
        return list(await asyncio.gather(*tasks))


@pytest.fixture
async def api(clean_db: str) -> AsyncIterator[Api]:
    app = App(clean_db, migrate_on_start=False, pool_min_size=1, pool_max_size=1)

    @app.job("demo.echo", queue="http")
    async def echo(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    with psycopg.connect(clean_db, autocommit=True) as conn:
        keys = {who: create_key(conn, who, actor="test")[1] for who in ("alice", "bob")}
    transport = httpx.ASGITransport(app=create_app(app), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        api = Api(app, client, clean_db, keys)
        for who in keys:  # the keys are known: their enqueues take the one-round-trip path
            assert (await api.post(who, {"type": "demo.echo"})).status_code == 202
        api.sql("TRUNCATE nightcrew.jobs")
        try:
            yield api
        finally:
            await app.aclose()


async def test_waiting_enqueues_of_one_key_are_written_by_one_transaction(api: Api) -> None:
    answers = await api.held([api.post("alice", {"type": "demo.echo", "payload": {"n": n}})
                              for n in range(30)])  # fmt: skip
    assert [a.status_code for a in answers] == [202] * 30
    assert [a.json()["payload"] for a in answers] == [{"n": n} for n in range(30)]
    assert len({a.json()["id"] for a in answers}) == 30
    rows = api.sql("SELECT payload, user_id, xmin::text FROM nightcrew.jobs")
    assert sorted(r[0]["n"] for r in rows) == list(range(30))
    assert {r[1] for r in rows} == {"alice"}
    assert len({r[2] for r in rows}) == 1  # one transaction wrote them all


async def test_enqueues_of_two_keys_never_share_a_transaction(api: Api) -> None:
    whose = ["alice", "bob"] * 10
    answers = await api.held([api.post(who, {"type": "demo.echo", "payload": {"who": who}})
                              for who in whose])  # fmt: skip
    assert [a.status_code for a in answers] == [202] * 20
    assert [a.json()["user_id"] for a in answers] == whose
    rows = api.sql("SELECT payload->>'who', user_id, xmin::text FROM nightcrew.jobs")
    assert all(who == user for who, user, _ in rows)
    xmins = {user: {xmin for _, u, xmin in rows if u == user} for user in ("alice", "bob")}
    assert len(xmins["alice"]) == len(xmins["bob"]) == 1
    assert xmins["alice"] != xmins["bob"]


async def test_a_job_the_database_refuses_fails_alone(api: Api) -> None:
    bodies = [{"type": "demo.echo", "payload": {"n": n}} for n in range(10)]
    # A lone surrogate: valid JSON for Python, refused by PostgreSQL's jsonb.
    bodies.insert(4, {"type": "demo.echo", "payload": {"text": "\ud800"}})
    answers = await api.held([api.post("alice", body) for body in bodies])
    refused = answers.pop(4)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "payload"
    assert [a.status_code for a in answers] == [202] * 10
    assert [a.json()["payload"] for a in answers] == [{"n": n} for n in range(10)]
    rows = api.sql("SELECT payload, xmin::text FROM nightcrew.jobs")
    assert sorted(r[0]["n"] for r in rows) == list(range(10))
    assert len({r[1] for r in rows}) == 10  # the batch was refused whole, then each went alone


async def test_a_key_revoked_while_its_enqueues_wait_is_refused_for_all_of_them(api: Api) -> None:
    pool = await api.app.apool()
    async with pool.connection():
        tasks = [asyncio.ensure_future(api.post("alice", {"type": "demo.echo"}))
                 for _ in range(5)]  # fmt: skip
        async with asyncio.timeout(10):
            while enqueue_batches(api.app).waiting() < 5:
                await asyncio.sleep(0.01)
        with psycopg.connect(api.db_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT id FROM nightcrew.api_keys WHERE key_hash = %s",
                (hash_key(api.keys["alice"]),),
            ).fetchone()
            assert row is not None
            revoke_key(conn, str(row[0]), actor="test")
    answers = await asyncio.gather(*tasks)
    assert [a.status_code for a in answers] == [401] * 5
    assert api.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]
