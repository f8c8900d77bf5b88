"""Statistics refresh runs, decided in the database.

A trigger (:func:`request_run`) joins the one waiting run or creates it, and enqueues the
run's ``league.refresh_stats`` job (coalesced: ``dedupe_scope="queued"``), all in the
caller's transaction. When that job starts the run (:func:`start_queued_run`) it enqueues
the ten statistics functions as parallel jobs. Each function job records its outcome in a
fenced transaction that also counts it on the run (:func:`function_ended`); the one that
ends last enqueues ``league.invalidate_cache`` in that same transaction (the fan-in). The
invalidation (:func:`finish_run`) drops the tags of the functions that succeeded, ends the
run ``completed`` or ``failed`` and starts the run that waited meanwhile, if any: a run
never overlaps another, and triggers during a run give exactly one follow-up.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from league.sql import query
from league.stats import FUNCTIONS, tags_of

if TYPE_CHECKING:
    from nightcrew import App

REFRESH_TYPE = "league.refresh_stats"
FUNCTION_TYPE = "league.run_statistic"
INVALIDATE_TYPE = "league.invalidate_cache"
REFRESH_DEDUPE_KEY = "league.refresh"
CACHE_CHANNEL = "league_cache"
"""NOTIFY channel: JSON ``{"tags": [...], "runId": ..., "sentAt": unix seconds}``."""
RUNS_CHANNEL = "league_runs"
"""NOTIFY channel: the id of a run that changed (the live Background Job Status table)."""
TRIGGERS = ("post-match", "admin", "cron")

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Trigger:
    """Why a refresh is asked for: by whom, for which match, under which request id."""

    triggered_by: str
    request_id: str
    match_id: int | None = None
    retry_of: UUID | None = None

    def params(self) -> dict[str, Any]:
        """The trigger as query parameters."""
        return {
            "triggered_by": self.triggered_by,
            "request_id": self.request_id,
            "match_id": self.match_id,
            "retry_of": self.retry_of,
        }


@dataclass(frozen=True)
class RunRef:
    """A run as the enqueue endpoint answers it."""

    id: UUID
    status: str


async def request_run(app: App, conn: Conn, trigger: Trigger) -> RunRef:
    """Ask for a refresh in ``conn``'s transaction: the run this request id already has,
    else the waiting run joined, else a new waiting run; its refresh job is enqueued
    (coalesced) in the same transaction, so a rollback leaves no trace."""
    params = trigger.params()
    await conn.execute(query("request_lock"), params)
    existing = await _one(conn, "run_of_request", params)
    if existing is not None:
        return RunRef(existing["id"], existing["status"])
    run = await _waiting_run(conn, params)
    await conn.execute(query("run_trigger_insert"), {**params, "run_id": run["id"]})
    payload = {"runId": str(run["id"]), **_trigger_payload(trigger)}
    job_id = await app.aenqueue(
        REFRESH_TYPE, payload, dedupe_key=REFRESH_DEDUPE_KEY, dedupe_scope="queued", conn=conn
    )
    await conn.execute(query("run_set_refresh_job"), {"id": run["id"], "job_id": job_id})
    await notify(conn, RUNS_CHANNEL, str(run["id"]))
    return RunRef(run["id"], run["status"])


def _trigger_payload(trigger: Trigger) -> dict[str, Any]:
    """The refresh job's payload fields of a trigger (the same shape for all three)."""
    return {
        "triggeredBy": trigger.triggered_by,
        "requestId": trigger.request_id,
        "matchId": trigger.match_id,
        "retryOf": str(trigger.retry_of) if trigger.retry_of else None,
    }


async def _waiting_run(conn: Conn, params: dict[str, Any]) -> dict[str, Any]:
    """The waiting run, created by this trigger when there is none. The loop ends: either
    the insert wins the one waiting slot, or a waiting run exists to join (a run that
    started between the two statements frees the slot for the next insert)."""
    while True:
        created = await _one(conn, "run_queued_insert", params)
        if created is not None:
            return created
        joined = await _one(conn, "run_queued_join")
        if joined is not None:
            return joined


async def start_queued_run(app: App, conn: Conn) -> UUID | None:
    """Start the waiting run unless another is processing: mark it processing and enqueue
    its ten function jobs, in ``conn``'s transaction. Returns the run started, if any."""
    await conn.execute(query("runs_lock"))
    started = await _one(conn, "run_start", {"total": len(FUNCTIONS)})
    if started is None:
        return None
    run_id: UUID = started["id"]
    items = [
        {"type": FUNCTION_TYPE, "payload": {"runId": str(run_id), "function": name}}
        for name in FUNCTIONS
    ]
    job_ids = await app.aenqueue_many(items, conn=conn)
    await conn.execute(
        query("run_functions_insert"),
        {"run_id": run_id, "functions": list(FUNCTIONS), "job_ids": job_ids},
    )
    await notify(conn, RUNS_CHANNEL, str(run_id))
    return run_id


async def function_started(conn: Conn, run_id: UUID, function: str, attempt: int) -> None:
    """An attempt of ``function`` in run ``run_id`` began (shown live on the League page)."""
    params = {"run_id": run_id, "function": function, "attempt": attempt}
    await conn.execute(query("run_function_started"), params)
    await notify(conn, RUNS_CHANNEL, str(run_id))


async def function_retrying(
    conn: Conn, run_id: UUID, function: str, attempt: int, error: str
) -> None:
    """An attempt of ``function`` failed and will be retried."""
    params = {"run_id": run_id, "function": function, "attempt": attempt, "error": error}
    await conn.execute(query("run_function_error"), params)
    await notify(conn, RUNS_CHANNEL, str(run_id))


@dataclass(frozen=True)
class Outcome:
    """How one function of a run ended."""

    status: str
    """``succeeded`` or ``failed``."""
    attempt: int
    duration_ms: float | None = None
    rows: int | None = None
    error: str | None = None


async def function_ended(
    app: App, conn: Conn, run_id: UUID, function: str, outcome: Outcome
) -> bool:
    """Record that ``function`` ended, in ``conn``'s (fenced) transaction; the function that
    ends last enqueues the run's cache invalidation there too. True when it was last.
    Recording twice (a rescued attempt) counts once."""
    params = {
        "run_id": run_id, "function": function, "status": outcome.status,
        "attempt": outcome.attempt, "error": outcome.error, "rows": outcome.rows,
        "duration_ms": None if outcome.duration_ms is None else round(outcome.duration_ms, 1),
    }  # fmt: skip
    counted = await _one(conn, "run_function_ended", params)
    await notify(conn, RUNS_CHANNEL, str(run_id))
    if counted is None or counted["functions_ended"] < counted["functions_total"]:
        return False
    await app.aenqueue(INVALIDATE_TYPE, {"runId": str(run_id)}, conn=conn)
    return True


async def finish_run(app: App, conn: Conn, run_id: UUID) -> dict[str, Any]:
    """Invalidate the cache tags of the run's functions that succeeded (every web process
    drops them when this transaction commits), end the run, and start the run that waits,
    if any. Failed functions keep their tags: their old values stay valid."""
    await conn.execute(query("runs_lock"))
    cur = await conn.execute(query("run_outcomes"), {"run_id": run_id})
    outcomes = {name: status for name, status in await cur.fetchall()}
    succeeded = [name for name, status in outcomes.items() if status == "succeeded"]
    failed = [name for name in FUNCTIONS if outcomes.get(name) != "succeeded"]
    tags = tags_of(succeeded)
    ended = await _one(conn, "run_finish", {"id": run_id, "failed": failed, "tags": tags})
    if ended is None:
        return {"runId": str(run_id), "status": "already ended"}
    if tags:
        message = {"tags": tags, "runId": str(run_id), "sentAt": time.time()}
        await notify(conn, CACHE_CHANNEL, json.dumps(message))
    await notify(conn, RUNS_CHANNEL, str(run_id))
    follow_up = await start_queued_run(app, conn)
    summary = f"run {ended['status']}: {len(tags)} tag(s) invalidated"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    return {
        "runId": str(run_id), "status": ended["status"], "failed": failed,
        "invalidated": tags, "followUp": str(follow_up) if follow_up else None,
        "summary": summary,
    }  # fmt: skip


async def notify(conn: Conn, channel: str, payload: str) -> None:
    """NOTIFY ``channel`` when ``conn``'s transaction commits."""
    await conn.execute(query("notify"), {"channel": channel, "payload": payload})


async def recent_runs(conn: Conn, limit: int = 10) -> list[dict[str, Any]]:
    """The latest ``limit`` runs, newest first, with their functions' outcomes."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("runs_recent"), {"id": None, "limit": limit})
        return [_run_json(row) for row in await cur.fetchall()]


async def run_detail(conn: Conn, run_id: UUID) -> dict[str, Any] | None:
    """One run with its functions' outcomes and every trigger it answered."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("runs_recent"), {"id": run_id, "limit": 1})
        row = await cur.fetchone()
        if row is None:
            return None
        await cur.execute(query("run_triggers_of"), {"run_id": run_id})
        triggers = await cur.fetchall()
    return {
        **_run_json(row),
        "triggers": [
            {"requestId": t["request_id"], "triggeredBy": t["triggered_by"],
             "matchId": t["match_id"], "retryOf": _text(t["retry_of"]),
             "receivedAt": t["received_at"].isoformat()}
            for t in triggers
        ],
    }  # fmt: skip


def _run_json(row: dict[str, Any]) -> dict[str, Any]:
    """A run row as the API's JSON (camelCase, like the enqueue endpoint)."""
    return {
        "jobId": str(row["id"]), "status": row["status"], "triggeredBy": row["triggered_by"],
        "requestId": row["request_id"], "matchId": row["match_id"],
        "retryOf": _text(row["retry_of"]), "failedFunctions": row["failed_functions"],
        "invalidatedTags": row["invalidated_tags"], "createdAt": _time(row["created_at"]),
        "startedAt": _time(row["started_at"]), "completedAt": _time(row["completed_at"]),
        "durationMs": None if row["duration_ms"] is None else float(row["duration_ms"]),
        "triggers": row["triggers"], "functions": row["functions"],
    }  # fmt: skip


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _time(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


async def _one(conn: Conn, name: str, params: dict[str, Any] | None = None) -> Any:
    """The first row of the named query as a dict, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(name), params or {})
        return await cur.fetchone()
