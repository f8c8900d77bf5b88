"""Per-request database transactions that act as a user under row-level security: the
user of an API key (the HTTP API) or of a dashboard session (the dashboard's cookie)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from nightcrew.http.errors import ApiError
from nightcrew.keys import hash_key
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

BEGIN = sql.SQL("BEGIN")
_REFUSED = psycopg.errors.InvalidAuthorizationSpecification
"""SQLSTATE 28000: ``nightcrew.act_as_api_key`` found no live key (migration 0016)."""


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
    committed: list[Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]] = field(
        default_factory=list
    )
    """Called in order once the transaction committed, on the same connection (out of
    the transaction and of row-level security): e.g. waking workers after an enqueue."""

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


class PrincipalCache:
    """Who each recently verified API key acts for, by the key's SHA-256; bounded (least
    recently used entries go first).

    It never stands in for the key check: every request still checks its key in the
    database, in its own transaction (``nightcrew.act_as_api_key``), so a revoked key is
    refused by its very next request. Knowing the principal beforehand only lets a request
    send that check together with its own statements in one round trip (``acting(...,
    pipeline=True)``). Only keys the database accepted are stored, so unknown keys cannot
    fill it; a key the database refuses is dropped from it."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: dict[bytes, Principal] = {}

    def get(self, key_hash: bytes) -> Principal | None:
        """The principal of ``key_hash`` if it was verified before (now most recent)."""
        principal = self._entries.pop(key_hash, None)
        if principal is not None:
            self._entries[key_hash] = principal
        return principal

    def put(self, key_hash: bytes, principal: Principal) -> None:
        """Remember a principal the database just accepted."""
        self._entries.pop(key_hash, None)
        self._entries[key_hash] = principal
        while len(self._entries) > self.size:
            del self._entries[next(iter(self._entries))]

    def drop(self, key_hash: bytes) -> None:
        """Forget a key the database refused."""
        self._entries.pop(key_hash, None)

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakKeyDictionary[App, PrincipalCache] = weakref.WeakKeyDictionary()


def principal_cache(app: App) -> PrincipalCache:
    """The cache of ``app``'s verified keys in this process."""
    cache = _caches.get(app)
    if cache is None:
        cache = _caches[app] = PrincipalCache()
    return cache


@asynccontextmanager
async def acting(app: App, key: str | None, *, pipeline: bool = False) -> AsyncIterator[Session]:
    """Open a transaction acting as the owner of ``key``; 401 when the key is not live.

    The key check and the switch to the restricted role happen in one statement, so the
    rest of the transaction can only see the key owner's rows (admins: every row); it is
    sent with the transaction's BEGIN, one round trip.

    ``pipeline=True``: the block runs in pipeline mode, and when this process has verified
    the key before, the check is not waited for: it goes to the database with the block's
    first statements (a block that fetches one result pays one round trip for all, plus
    the commit's). Statements are sent when a result is fetched or at the end, so an error
    surfaces there: use it for blocks that fetch every result they catch errors of. A key
    revoked meanwhile fails the check, which aborts everything sent after it: 401.
    """
    if not key:
        raise unauthorized()
    key_hash = hash_key(key)
    cache = principal_cache(app)
    known = cache.get(key_hash) if pipeline else None
    try:
        async with _acting_as(
            app, "http_authenticate", {"key_hash": key_hash}, pipeline=pipeline, known=known
        ) as session:
            if known is None:
                cache.put(key_hash, session.principal)
            yield session
    except ApiError as exc:
        if exc.status == 401:
            cache.drop(key_hash)
        raise


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
    *,
    pipeline: bool = False,
    known: Principal | None = None,
) -> AsyncIterator[Session]:
    """A transaction acting as the principal the named ``lookup`` query finds (and, in
    the same statement, switches to); 401 with ``refusal`` when it finds none or refuses
    (SQLSTATE 28000). BEGIN and the lookup go in one round trip (a pipeline); the block
    then runs in pipeline mode with ``pipeline``, else in the ordinary mode. ``known``
    (with ``pipeline``): the principal the lookup is expected to confirm, so the block
    starts before the lookup's answer has come back."""
    pool = await app.apool()
    # A short wait: with the database down, answer 503 quickly rather than hang (errors.py).
    timeout = app.settings.http_pool_timeout_seconds
    async with pool.connection(timeout=timeout) as conn:
        try:
            if pipeline:
                async with conn.pipeline() as piped, conn.transaction():
                    cur = conn.cursor(row_factory=dict_row)
                    await cur.execute(query(lookup), params)
                    principal = known or _principal(await cur.fetchone(), refusal)
                    session = Session(conn, principal)
                    try:
                        yield session
                    except Exception as exc:
                        # A refused key is a 401, whatever the block says: unless the
                        # lookup's answer is in and confirms the key, the block's error
                        # goes unsaid (it may name job types, matches, runs).
                        if known is not None and not isinstance(exc, _REFUSED):
                            with contextlib.suppress(psycopg.Error):
                                await piped.sync()
                            if cur.pgresult is None or cur.pgresult.ntuples != 1:
                                raise unauthorized(refusal) from None
                        raise
                # With ``known``, the lookup, the block's statements and the COMMIT went
                # together: had the lookup refused, nothing after it would have run and
                # the sync would have raised its error here (28000 -> 401).
                if known is not None:
                    _principal(await cur.fetchone(), refusal)
            else:
                async with _transaction_opened_with(conn, query(lookup), params) as row:
                    session = Session(conn, _principal(row, refusal))
                    yield session
        except _REFUSED:
            raise unauthorized(refusal) from None
        for then in session.committed:
            await then(conn)


def _principal(row: dict[str, Any] | None, refusal: str) -> Principal:
    if row is None:
        raise unauthorized(refusal)
    return Principal(row["user_id"], row["is_admin"], row["key_id"])


@asynccontextmanager
async def _transaction_opened_with(
    conn: psycopg.AsyncConnection[Any], statement: Any, params: dict[str, Any]
) -> AsyncIterator[dict[str, Any] | None]:
    """A transaction whose BEGIN is sent with its first statement (one round trip), then
    run in the ordinary mode; yields that statement's first row. Committed at the end of
    the block, rolled back when it raises (as ``conn.transaction()`` would)."""
    try:
        async with conn.pipeline():
            await conn.execute(BEGIN)
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(statement, params)
            row = await cur.fetchone()
        yield row
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
        raise
    await conn.commit()
