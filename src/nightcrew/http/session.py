"""Per-request database transactions that act as a user under row-level security: the
user of an API key (the HTTP API) or of a dashboard session (the dashboard's cookie)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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

BEGIN = sql.SQL("BEGIN;\n")
REFUSED = psycopg.errors.InvalidAuthorizationSpecification
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
    first: list[dict[str, Any]] | None = None
    """The rows of the ``first`` statement given to :func:`acting`, if one was."""

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
    send that check together with its own statements in one round trip (``POST
    /api/jobs``: the check, the insert and the read-back). Only keys the database accepted
    are stored, so unknown keys cannot fill it; a key the database refuses is dropped.

    ``size`` is the ``http_key_cache_size`` setting (an entry is ~350 bytes); 0 keeps none,
    and every request then checks its key in a round trip of its own."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        # A dict keeps insertion order: re-inserting on use makes the first key the LRU one.
        self._entries: dict[bytes, Principal] = {}

    def get(self, key_hash: bytes) -> Principal | None:
        """The principal of ``key_hash`` if it was verified before (now most recent)."""
        principal = self._entries.pop(key_hash, None)
        if principal is not None:
            self._entries[key_hash] = principal
        return principal

    def put(self, key_hash: bytes, principal: Principal) -> None:
        """Remember a principal the database just accepted (size 0: remember nothing)."""
        self._entries.pop(key_hash, None)
        if self.size <= 0:
            return
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
        cache = _caches[app] = PrincipalCache(app.settings.http_key_cache_size)
    return cache


def known_principal(app: App, key: str | None) -> Principal | None:
    """Who ``key`` acts for if this process has seen the database accept it (it may have
    been revoked since: a request must still have it checked, in its own transaction)."""
    return principal_cache(app).get(hash_key(key)) if key else None


def key_check(key: str) -> tuple[sql.SQL, dict[str, Any]]:
    """The statement that checks ``key`` and makes the rest of its transaction act as the
    key's user, with its parameters; it raises SQLSTATE 28000 for a key that is not live."""
    return query("http_authenticate"), {"key_hash": hash_key(key)}


def forget_key(app: App, key: str) -> None:
    """Drop ``key`` from this process's known principals (the database refused it)."""
    principal_cache(app).drop(hash_key(key))


@asynccontextmanager
async def acting(
    app: App, key: str | None, *, first: tuple[sql.SQL, dict[str, Any]] | None = None
) -> AsyncIterator[Session]:
    """Open a transaction acting as the owner of ``key``; 401 when the key is not live.

    The key check and the switch to the restricted role happen in one statement, so the
    rest of the transaction can only see the key owner's rows (admins: every row); it is
    sent with the transaction's BEGIN, one round trip. The principal of a key the database
    accepted is remembered in this process (:class:`PrincipalCache`, see
    :func:`known_principal`).

    ``first``: a statement and its parameters to run right after the key check, in the same
    round trip and transaction, acting as the key's user (a refused key stops before it);
    its rows are ``session.first``. Its parameters are bound by psycopg on the client side
    (the three go as one simple-protocol query).
    """
    if not key:
        raise unauthorized()
    statement, params = key_check(key)
    if first is not None and (clash := sorted(params.keys() & first[1].keys())):
        # One parameter dict serves both statements: a clash would rebind the key check's own.
        raise ValueError(f"acting(first=...) may not use the parameter names {clash}")
    try:
        async with _acting_as(app, statement, params, first=first) as session:
            principal_cache(app).put(params["key_hash"], session.principal)
            yield session
    except ApiError as exc:
        if exc.status == 401:
            forget_key(app, key)
        raise


@asynccontextmanager
async def acting_for_dashboard(app: App, session_id: str | None) -> AsyncIterator[Session]:
    """Like :func:`acting`, for the dashboard session whose random id the cookie holds;
    401 when it is unknown, logged out, expired, or its API key was revoked."""
    if not session_id:
        raise unauthorized("log in first")
    params = {"id_hash": hash_key(session_id)}
    lookup = query("dash_session_authenticate")
    async with _acting_as(app, lookup, params, "log in first") as session:
        yield session


@asynccontextmanager
async def _acting_as(
    app: App,
    lookup: sql.SQL,
    params: dict[str, Any],
    refusal: str = "missing or invalid API key",
    *,
    first: tuple[sql.SQL, dict[str, Any]] | None = None,
) -> AsyncIterator[Session]:
    """A transaction acting as the principal the ``lookup`` statement finds (and, in the
    same statement, switches to); 401 with ``refusal`` when it finds none or refuses
    (SQLSTATE 28000). BEGIN, the lookup and ``first`` go in one round trip."""
    pool = await app.apool()
    # A short wait: with the database down, answer 503 quickly rather than hang (errors.py).
    timeout = app.settings.http_pool_timeout_seconds
    async with pool.connection(timeout=timeout) as conn:
        try:
            async with _transaction_opened_with(conn, lookup, params, first) as (row, rows):
                if row is None:
                    raise unauthorized(refusal)
                principal = Principal(row["user_id"], row["is_admin"], row["key_id"])
                session = Session(conn, principal, rows)
                yield session
        except REFUSED:
            raise unauthorized(refusal) from None


@asynccontextmanager
async def _transaction_opened_with(
    conn: psycopg.AsyncConnection[Any],
    statement: sql.SQL,
    params: dict[str, Any],
    then: tuple[sql.SQL, dict[str, Any]] | None = None,
) -> AsyncIterator[tuple[dict[str, Any] | None, list[dict[str, Any]] | None]]:
    """A transaction whose BEGIN goes with its first statement (and ``then``) in one round
    trip (one simple-protocol query, parameters bound by psycopg), yielding that
    statement's first row and ``then``'s rows; the block's statements then run as usual.
    Committed at the end of the block, rolled back when it raises (as
    ``conn.transaction()`` would)."""
    try:
        text, values = BEGIN + statement, params
        if then is not None:
            # A newline before the ";": a statement may end in a comment.
            text, values = text + sql.SQL("\n;\n") + then[0], {**params, **then[1]}
        rows = None
        async with psycopg.AsyncClientCursor(conn, row_factory=dict_row) as cur:
            await cur.execute(text, values)
            cur.nextset()
            row = await cur.fetchone()
            if then is not None:
                cur.nextset()
                rows = await cur.fetchall()
        yield row, rows
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                await conn.rollback()
        raise
    await conn.commit()
