"""``POST /api/jobs`` that goes in one round trip is answered before FastAPI's routing
(:class:`nightcrew.http.enqueue_direct.DirectEnqueue`); everything else reaches FastAPI with
its body, so refusals are FastAPI's own and write nothing (docs/security.md)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.http.enqueue_direct import DirectEnqueue
from nightcrew.keys import create_key, hash_key, revoke_key


@dataclass
class Api:
    app: App
    client: httpx.AsyncClient
    db_url: str
    key: str
    passed_on: list[str] = field(default_factory=list)  # bodies DirectEnqueue handed to FastAPI

    async def post(
        self, body: Any, content_type: str = "application/json", path: str = "/api/jobs"
    ) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}
        return await self.client.post(path, content=raw, headers=headers)

    def count(self) -> int:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone()
            assert row is not None
            return int(row[0])


def count_passed_on(api: FastAPI, passed_on: list[str]) -> None:
    """Build ``api``'s middleware stack with a recorder behind :class:`DirectEnqueue`: what it
    records reached FastAPI's routing (with the body FastAPI read)."""
    stack: Any = api.build_middleware_stack()
    layer = stack
    while not isinstance(layer, DirectEnqueue):
        layer = layer.app
    inner: ASGIApp = layer.app

    async def recorder(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            message = await receive()
            body = message.get("body", b"")
            passed_on.append(body.decode())

            async def replay() -> Any:
                return {"type": "http.request", "body": body, "more_body": False}

            await inner(scope, replay, send)
            return
        await inner(scope, receive, send)

    layer.app = recorder
    api.middleware_stack = stack


def register(app: App) -> None:
    @app.job("demo.echo", queue="http")
    async def echo(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None


@asynccontextmanager
async def serving(db_url: str, mount: str | None = None) -> AsyncIterator[Api]:
    """The API of an App (below ``mount`` in a host app, if given) and a client of it."""
    app = App(db_url, migrate_on_start=False)
    register(app)
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = create_key(conn, "alice", actor="test")[1]
    asgi: Any = create_app(app)
    passed_on: list[str] = []
    count_passed_on(asgi, passed_on)
    if mount is not None:
        host = FastAPI()
        host.mount(mount, asgi)
        asgi = host
    transport = httpx.ASGITransport(app=asgi, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(app, client, db_url, key, passed_on)
    finally:
        await app.aclose()


@pytest.fixture
async def api(clean_db: str) -> AsyncIterator[Api]:
    async with serving(clean_db) as api:
        # The key's first request goes step by step through FastAPI and makes it known.
        assert (await api.post({"type": "demo.echo"})).status_code == 202
        assert len(api.passed_on) == 1
        api.passed_on.clear()
        yield api


async def test_a_known_keys_enqueue_never_reaches_fastapi_and_is_answered_alike(
    api: Api,
) -> None:
    direct = await api.post({"type": "demo.echo", "payload": {"n": 1}})
    assert direct.status_code == 202, direct.text
    assert api.passed_on == []
    # The same request through FastAPI (a JSON type the direct path leaves to it).
    routed = await api.post({"type": "demo.echo", "payload": {"n": 1}}, "application/ld+json")
    assert routed.status_code == 202, routed.text
    assert len(api.passed_on) == 1
    same = {k for k in direct.json() if k not in ("id", "created_at", "run_at", "updated_at")}
    assert {k: direct.json()[k] for k in same} == {k: routed.json()[k] for k in same}
    assert direct.headers["content-type"] == routed.headers["content-type"]
    assert api.count() == 3  # the fixture's, and these two


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b'{"type": "demo.echo", ', 400, None),  # not JSON
        (b'["demo.echo"]', 422, "body"),  # JSON, not an object
        ({"payload": {}}, 422, "type"),
        ({"type": "demo.echo", "priority": "high"}, 422, "priority"),
        ({"type": "demo.nope"}, 422, "type"),  # valid, then refused by the route
        ({"type": "demo.echo", "queue": "elsewhere"}, 422, "queue"),
        ({"type": "demo.echo", "payload": {"text": "a\u0000b"}}, 422, "payload"),
    ],
)
async def test_refusals_are_fastapis_own_and_write_nothing(
    api: Api, body: Any, status: int, field: str | None
) -> None:
    before = api.count()
    answer = await api.post(body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"].get("field") == field
    # FastAPI got the request with its whole body, and nothing was written first.
    assert api.passed_on == [body.decode() if isinstance(body, bytes) else json.dumps(body)]
    assert api.count() == before


async def test_other_requests_reach_fastapi_untouched(api: Api) -> None:
    text = await api.post(b"demo.echo", "text/plain")
    assert text.status_code == 422  # FastAPI's refusal of a body that is not JSON
    anonymous = await api.client.post("/api/jobs", json={"type": "demo.echo"})
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    parent = (await api.post({"type": "demo.echo"})).json()["id"]  # direct: not counted
    with_parents = await api.post({"type": "demo.echo", "depends_on": [parent]})
    assert with_parents.status_code == 202, with_parents.text
    keyed = await api.post({"type": "demo.echo", "dedupe_key": "k"})
    assert keyed.status_code == 202
    assert len(api.passed_on) == 4


async def test_refusals_once_the_write_began_are_answered_by_the_api_handlers(
    api: Api,
) -> None:
    # A lone surrogate: valid JSON for Python, refused by PostgreSQL's jsonb at the write.
    refused = await api.post({"type": "demo.echo", "payload": {"text": "\ud800"}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "payload"
    with psycopg.connect(api.db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT id FROM nightcrew.api_keys WHERE key_hash = %s", (hash_key(api.key),)
        ).fetchone()
        assert row is not None
        revoke_key(conn, str(row[0]), actor="test")
    # Still known to this process: the direct path writes, and the database refuses the key.
    revoked = await api.post({"type": "demo.echo"})
    assert revoked.status_code == 401, revoked.text
    assert revoked.headers["www-authenticate"] == "Bearer"
    assert revoked.json()["error"]["code"] == "unauthorized"
    assert api.passed_on == []
    assert api.count() == 1  # the fixture's


async def test_the_direct_path_serves_an_api_mounted_below_a_prefix(clean_db: str) -> None:
    async with serving(clean_db, mount="/work") as api:
        for n in range(2):
            answer = await api.post({"type": "demo.echo", "payload": {"n": n}},
                                    path="/work/api/jobs")  # fmt: skip
            assert answer.status_code == 202, answer.text
        assert len(api.passed_on) == 1  # the first, which made the key known
        listed = await api.client.get(
            "/work/api/jobs", headers={"Authorization": f"Bearer {api.key}"}
        )
        assert sorted(j["payload"]["n"] for j in listed.json()["items"]) == [0, 1]
