"""``/api/league``: the one enqueue endpoint of the three triggers, match results, the
statistics (served from the per-process cache), runs, and the signed cache invalidation
for outside frontends.

Writes need an admin API key and run in one transaction acting as the key's user
(``nightcrew.http.acting``); the statistics themselves are public.

No ``from __future__ import annotations`` here: FastAPI must resolve the route signatures'
annotations, which name the closure's dependencies."""

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import psycopg
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from league import runs
from league.cache import LeagueHub
from league.models import InvalidateRequest, MatchResultRequest, StatsJobRequest
from league.runs import CACHE_CHANNEL, Trigger
from league.sql import query
from league.stats import SEASON_TAGS, TAGS
from nightcrew import verify_webhook
from nightcrew.http import ApiError, Session, acting, known_principal

if TYPE_CHECKING:
    from nightcrew import App

bearer = HTTPBearer(auto_error=False, description="A nightcrew API key.")
Key = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
TIMESTAMP_HEADER = "X-Nightcrew-Timestamp"
SIGNATURE_HEADER = "X-Nightcrew-Signature"
REPLAY_WINDOW_SECONDS = 300
"""Signed invalidation requests older (or newer) than this are refused."""
MAX_INVALIDATE_BYTES = 16 * 1024


def build_router(app: "App", hub: LeagueHub) -> APIRouter:
    """The ``/api/league`` routes of ``app``; ``hub`` is this process's cache and LISTEN."""
    router = APIRouter(prefix="/api/league", tags=["league"])

    @asynccontextmanager
    async def acting_user(credentials: HTTPAuthorizationCredentials | None,
                          admin_for: str | None = None,
                          first: tuple[Any, dict[str, Any]] | None = None,
                          ) -> AsyncIterator[Session]:  # fmt: skip
        secret = credentials.credentials if credentials else None
        async with acting(app, secret, first=first) as session:
            if admin_for and not session.principal.is_admin:
                raise ApiError(403, f"{admin_for} needs an admin API key")
            yield session

    @router.post("/stats-jobs", status_code=202, summary="Ask for a statistics refresh")
    async def post_stats_job(
        body: StatsJobRequest, key: Key, after: BackgroundTasks
    ) -> dict[str, Any]:
        trigger = Trigger(body.triggeredBy, body.requestId, body.matchId, body.retryOf)
        # A trigger with nothing to check, from a key this process knows as an admin's:
        # league.request_run() goes with the key check (one round trip, then the commit).
        known = known_principal(app, key.credentials if key else None)
        first = None
        if known and known.is_admin and trigger.match_id is None and trigger.retry_of is None:
            first = runs.request_run_statement(trigger)
        async with acting_user(key, "a statistics refresh", first) as session:
            if session.first is None:
                await check_trigger(session, trigger)
            asked = session.first[0] if session.first else None
            run = await runs.request_run(app, session.conn, trigger, asked=asked)
        # Committed: the live table's NOTIFY goes once the answer is sent (it may wait
        # for the cluster's NOTIFY lock; the request need not).
        after.add_task(runs.announce, app, run)
        return {"jobId": str(run.id), "status": run.status}

    @router.post("/matches/{match_id}/result", summary="Store a match result and refresh")
    async def post_result(
        match_id: int, body: MatchResultRequest, key: Key, after: BackgroundTasks
    ) -> dict[str, Any]:
        async with acting_user(key, "recording a result") as session:
            stored, run = await store_result(app, session, match_id, body)
        after.add_task(runs.announce, app, run)  # committed; sent after the answer
        return stored

    @router.get("/stats-jobs", summary="The latest statistics runs")
    async def get_runs(key: Key, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
        async with acting_user(key) as session:
            return {"runs": await runs.recent_runs(session.conn, limit)}

    @router.get("/stats-jobs/{job_id}", summary="One run with its functions' outcomes")
    async def get_run(job_id: str, key: Key) -> dict[str, Any]:
        async with acting_user(key) as session:
            run_id = _uuid_or_404(job_id)
            found = await runs.run_detail(session.conn, run_id)
        if found is None:
            raise ApiError(404, f"no statistics job {job_id}")
        return found

    @router.get("/stats/{tag}", summary="The statistics of one cache tag (cached)")
    async def get_stats(tag: str, season: Annotated[int | None, Query(ge=1)] = None) -> Response:
        if tag not in TAGS:
            raise ApiError(404, f"unknown statistics tag {tag!r}; one of: {', '.join(TAGS)}")
        if season is not None and tag not in SEASON_TAGS:
            raise ApiError(422, f"season: {tag} is not per season", field="season")
        await hub.start()
        params = {"season": season} if tag in SEASON_TAGS else {}
        rows = await hub.cache.get(tag, str(season or ""), lambda: read_stats(app, tag, params))
        body = f'{{"tag":{json.dumps(tag)},"season":{json.dumps(season)},"rows":{rows}}}'
        return Response(body, media_type="application/json")

    @router.get("/cache", summary="This web process's statistics cache")
    async def get_cache(key: Key) -> dict[str, Any]:
        async with acting_user(key):
            pass  # any valid key may look
        await hub.start()
        return hub.cache.status()

    @router.get("/internal/cache/secret", summary="The secret that signs cache invalidations")
    async def get_invalidation_secret(key: Key) -> dict[str, Any]:
        async with acting_user(key, "the invalidation secret"):
            pass
        return {"secret": invalidation_secret(configured_secret(app)),
                "headers": [TIMESTAMP_HEADER, SIGNATURE_HEADER]}  # fmt: skip

    @router.post("/internal/cache/invalidate", status_code=202,
                 summary="Drop cache tags in every web process (HMAC-signed)")  # fmt: skip
    async def post_invalidate(request: Request) -> dict[str, Any]:
        body = await read_signed_body(app, request)
        tags = parse_tags(body)
        pool = await app.apool()
        async with pool.connection() as conn, conn.transaction():
            receipt = await conn.execute(
                query("receipt_insert"), {"signature": request.headers[SIGNATURE_HEADER]}
            )
            if await receipt.fetchone() is None:
                raise ApiError(409, "this signed request was already accepted (replay refused)")
            await runs.notify(conn, CACHE_CHANNEL, json.dumps({"tags": tags, "runId": None}))
        return {"invalidated": tags}

    return router


async def check_trigger(session: Session, trigger: Trigger) -> None:
    """Refuse (422) a trigger naming a match or a run to retry that does not exist."""
    if trigger.match_id is not None:
        cur = await session.conn.execute(query("match_get"), {"id": trigger.match_id})
        if await cur.fetchone() is None:
            raise ApiError(422, f"matchId: no match {trigger.match_id}", field="matchId")
    if trigger.retry_of is not None:
        cur = await session.conn.execute(query("run_failed_get"), {"id": trigger.retry_of})
        if await cur.fetchone() is None:
            raise ApiError(422, f"retryOf: no failed run {trigger.retry_of}", field="retryOf")


async def store_result(
    app: "App", session: Session, match_id: int, body: MatchResultRequest
) -> tuple[dict[str, Any], runs.RunRef]:
    """Write the result and ask for a post-match refresh in the session's transaction; the
    deferred two-teams check runs after the enqueue, so a refused result enqueues nothing.
    Returns the answer and the run (to announce once committed)."""
    conn = session.conn
    cur = await conn.execute(query("match_get"), {"id": match_id})
    if await cur.fetchone() is None:
        raise ApiError(404, f"no match {match_id}")
    ids = [a.playerId for a in body.appearances]
    cur = await conn.execute(query("players_known"), {"ids": ids})
    unknown = sorted(set(ids) - {row[0] for row in await cur.fetchall()})
    if unknown:
        raise ApiError(422, f"appearances: unknown player(s) {unknown}", field="appearances")
    await conn.execute(query("result_clear"), {"match_id": match_id})
    cur = await conn.execute(query("result_store"), {
        "match_id": match_id, "players": ids, "teams": [a.team for a in body.appearances],
        "goals": [a.goals for a in body.appearances],
        "assists": [a.assists for a in body.appearances],
    })  # fmt: skip
    await cur.fetchall()
    request_id = body.requestId or f"match:{match_id}:{session.principal.key_id}"
    run = await runs.request_run(app, conn, Trigger("post-match", request_id, match_id))
    try:
        await conn.execute(query("check_constraints"))
    except psycopg.errors.CheckViolation as exc:
        raise ApiError(
            422, f"appearances: {exc.diag.message_primary}", field="appearances"
        ) from None
    score = await conn.execute(query("match_score"), {"id": match_id})
    goals = await score.fetchone()
    assert goals is not None
    return {"matchId": match_id, "goalsA": goals[0], "goalsB": goals[1],
            "jobId": str(run.id), "status": run.status}, run  # fmt: skip


async def read_stats(app: "App", tag: str, params: dict[str, Any]) -> str:
    """The rows of ``tag`` as JSON text, from the database."""
    pool = await app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(query(f"stats_{tag}"), params)
        row = await cur.fetchone()
    return str(row[0]) if row else "[]"


def configured_secret(app: "App") -> str:
    """The App's ``webhook_secret``; 503 when none is configured."""
    secret = app.settings.webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ApiError(503, "no webhook secret configured (NIGHTCREW_WEBHOOK_SECRET)")
    return secret.get_secret_value()


def invalidation_secret(master: str) -> str:
    """The secret of signed cache invalidations, derived from ``webhook_secret``: a body
    nightcrew signed as a webhook (with the master secret) is never accepted here, and no
    secret needs storing."""
    mac = hmac.new(master.encode(), b"league-cache-invalidate", hashlib.sha256)
    return f"whsec_{mac.hexdigest()}"


async def read_signed_body(app: "App", request: Request) -> bytes:
    """The raw body of a request signed like nightcrew's webhooks, with the invalidation
    secret; 401 when unsigned, forged or more than five minutes old."""
    secret = invalidation_secret(configured_secret(app))
    body = await request.body()
    if len(body) > MAX_INVALIDATE_BYTES:
        raise ApiError(413, "body too large")
    timestamp = request.headers.get(TIMESTAMP_HEADER)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise ApiError(401, f"sign the request: {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    if not verify_webhook(secret, body, timestamp, signature,
                          tolerance=REPLAY_WINDOW_SECONDS):  # fmt: skip
        raise ApiError(401, "bad signature, or a timestamp more than 5 minutes away")
    return body


def parse_tags(body: bytes) -> list[str]:
    """The known tags of an invalidation body; 422 naming what is wrong."""
    try:
        request = InvalidateRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, f"{where}: {first['msg']}", field=where) from None
    unknown = [tag for tag in request.tags if tag not in TAGS]
    if unknown:
        raise ApiError(422, f"tags: unknown tag(s) {unknown}", field="tags")
    return list(dict.fromkeys(request.tags))


def _uuid_or_404(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise ApiError(404, f"no statistics job {text}") from None
