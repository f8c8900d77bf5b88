"""A statement that row-level security or a missing grant refuses, inside any route acting
as a user (nightcrew's or an application's), answers 403 in the error shape, never 500."""

from __future__ import annotations

from typing import Annotated

import httpx
import psycopg
from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nightcrew import App
from nightcrew.http import acting, create_app
from nightcrew.keys import create_key

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(HTTPBearer(auto_error=False))]


async def test_a_refused_statement_in_an_application_route_is_403(db_url: str) -> None:
    app = App(db_url, migrate_on_start=False)
    router = APIRouter(prefix="/api/probe")

    @router.get("/keys")
    async def read_keys(credentials: Credentials) -> int:
        async with acting(app, credentials.credentials if credentials else None) as session:
            # The API role has no grant on api_keys: PostgreSQL refuses the read.
            await session.conn.execute("SELECT count(*) FROM nightcrew.api_keys")
        return 0

    app.add_router(router)
    with psycopg.connect(db_url, autocommit=True) as conn:
        key = create_key(conn, "alice", actor="test")[1]
    try:
        transport = httpx.ASGITransport(app=create_app(app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            reply = await client.get("/api/probe/keys", headers={"Authorization": f"Bearer {key}"})
    finally:
        await app.aclose()
    assert reply.status_code == 403, reply.text
    assert reply.json()["error"] == {"code": "forbidden", "message": "not allowed for this API key"}
