"""Per-request database transactions that act as a user under row-level security: the
user of an API key (the HTTP API) or of a dashboard session (the dashboard's cookie)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew.http.errors import ApiError
from nightcrew.keys import hash_key
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App


@dataclass(frozen=True)
class Principal:
    """Who a request acts for."""

    user_id: str
    is_admin: bool
    key_id: UUID


@dataclass
class Session:
    """A connection inside a transaction that acts as ``principal`` (role nightcrew_api)."""

    conn: psycopg.AsyncConnection[Any]
    principal: Principal

    async def one(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The first row of the named query, as a dict."""
        async with self.conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(name), params or {})
            return await cur.fetchone()

    async def all(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every row of the named query, as dicts."""
        async with self.conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(name), params or {})
            return await cur.fetchall()


def unauthorized(message: str = "missing or invalid API key") -> ApiError:
    """The 401 answer."""
    return ApiError(401, message)


@asynccontextmanager
async def acting(app: App, key: str | None) -> AsyncIterator[Session]:
    """Open a transaction acting as the owner of ``key``; 401 when the key is not live.

    The key lookup and the switch to the restricted role happen in one statement, so the
    rest of the transaction can only see the key owner's rows (admins: every row).
    """
    if not key:
        raise unauthorized()
    async with _acting_as(app, "http_authenticate", {"key_hash": hash_key(key)}) as session:
        yield session


@asynccontextmanager
async def acting_for_dashboard(app: App, session_id: str | None) -> AsyncIterator[Session]:
    """Like :func:`acting`, for the dashboard session whose random id the cookie holds;
    401 when it is unknown, logged out, expired, or its API key was revoked."""
    if not session_id:
        raise unauthorized("log in first")
    params = {"id_hash": hash_key(session_id)}
    async with _acting_as(app, "dash_session_authenticate", params, "log in first") as session:
        yield session


@asynccontextmanager
async def _acting_as(
    app: App,
    lookup: str,
    params: dict[str, Any],
    refusal: str = "missing or invalid API key",
) -> AsyncIterator[Session]:
    """A transaction acting as the principal the named ``lookup`` query finds (and, in
    the same statement, switches to); 401 with ``refusal`` when it finds none."""
    pool = await app.apool()
    # A short wait: with the database down, answer 503 quickly rather than hang (errors.py).
    timeout = app.settings.http_pool_timeout_seconds
    async with pool.connection(timeout=timeout) as conn, conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query(lookup), params)
            row = await cur.fetchone()
        if row is None:
            raise unauthorized(refusal)
        principal = Principal(row["user_id"], row["is_admin"], row["key_id"])
        yield Session(conn, principal)
