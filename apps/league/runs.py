"""Statistics refresh runs, decided in the database.

A trigger (:func:`request_run`) joins the one waiting run or creates it, and enqueues the
run's ``league.refresh_stats`` job (coalesced: ``dedupe_scope="queued"``), all in the
caller's transaction. When that job starts the run (:func:`start_queued_run`) it fans out
the ten statistics functions as parallel jobs and one dependent ``league.invalidate_cache``
(``on_parent_failure="run"``: it runs once all ten have ended, whatever their outcome).
Each function job records its attempts, duration and outcome (:func:`function_ended`).
The invalidation (:func:`finish_run`) reads the outcomes from its parents, drops the tags
of the functions that succeeded, ends the run ``completed`` or ``failed`` and starts the run
that waited meanwhile, if any: a run never overlaps another, and triggers during a run give
exactly one follow-up.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from league.sql import query
from league.stats import FUNCTIONS, tags_of
from nightcrew import ParentJob

if TYPE_CHECKING:
    from nightcrew import App

logger = logging.getLogger(__name__)

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
    created: bool = False
    """This request created the run: :func:`announce` it once the transaction committed."""


def request_run_statement(trigger: Trigger) -> tuple[Any, dict[str, Any]]:
    """The statement that joins or creates the waiting run for ``trigger``, with its
    parameters: what :func:`request_run` runs first (a caller may have run it already, in
    the same transaction, and pass its row as ``asked``)."""
    return query("request_run"), trigger.params()


async def request_run(
    app: App,
    conn: Conn,
    trigger: Trigger,
    *,
    kick: bool = False,
    asked: dict[str, Any] | None = None,
) -> RunRef:
    """Ask for a refresh in ``conn``'s transaction: the run this request id already has,
    else the waiting run joined, else a new waiting run whose refresh job, when no run is
    processing, is enqueued (coalesced) in the same transaction, so a rollback leaves no
    trace. ``kick``: enqueue
    the refresh job even when joining (the nightly trigger and the page's buttons do, so a
    waiting run whose refresh job failed for good still starts).

    Joining takes no lock the run's start waits for and writes no shared row, so concurrent
    triggers queue neither behind each other nor behind the start; a caller that wrote
    before asking (a match result) holds the run's join lock, which the run's function jobs
    wait for (:func:`wait_for_joiners`), so its writes are in the run's statistics
    (migration 0004). A run created while another is processing needs no refresh job (the
    processing run's end starts it), so its creator's transaction is as short as a
    joiner's. It is one round trip (``league.request_run()``), none when the caller
    ran :func:`request_run_statement` in this transaction and passes its row as ``asked``.
    Nothing here notifies: a creating caller calls :func:`announce` after its commit."""
    run = asked if asked is not None else await _one(conn, "request_run", trigger.params())
    if run["needs_job"] or (kick and run["status"] == "queued"):
        payload = {"runId": str(run["id"]), **_trigger_payload(trigger)}
        await app.aenqueue(
            REFRESH_TYPE,
            payload,
            dedupe_key=REFRESH_DEDUPE_KEY,
            dedupe_scope="queued",
            conn=conn,
        )  # the job names its run in its payload (the run no longer names its job: a round trip)
    return RunRef(run["id"], run["status"], bool(run["created"]))


async def announce(app: App, run: RunRef) -> None:
    """Tell the live Background Job Status tables of a run ``request_run`` created, after
    the creating transaction committed: in a statement of its own, which writes no WAL, so
    it holds the cluster's NOTIFY commit lock for microseconds (in the creator's transaction
    it was held through the commit's WAL flush, while joiners waited for that commit). If
    this is lost (the process dies first), the table learns of the run when it starts."""
    if not run.created:
        return
    try:
        pool = await app.apool()
        async with pool.connection() as conn:
            await notify(conn, RUNS_CHANNEL, str(run.id))
    except psycopg.Error as exc:  # the run is committed: its start will show it
        logger.warning("run %s created, but telling the live tables failed: %s", run.id, exc)


async def wait_for_joiners(conn: Conn, run_id: UUID) -> None:
    """Wait until the triggers that joined ``run_id`` holding writes of their own (match
    results) have committed, so a statistics function computed after this sees them.
    ``conn`` in autocommit with no transaction open: the lock is released at once."""
    await conn.execute(query("run_joiners_wait"), {"run_id": run_id})


def _trigger_payload(trigger: Trigger) -> dict[str, Any]:
    """The refresh job's payload fields of a trigger (the same shape for all three)."""
    return {
        "triggeredBy": trigger.triggered_by,
        "requestId": trigger.request_id,
        "matchId": trigger.match_id,
        "retryOf": str(trigger.retry_of) if trigger.retry_of else None,
    }


async def start_queued_run(app: App, conn: Conn) -> UUID | None:
    """Start the waiting run unless another is processing: mark it processing and fan out
    its ten function jobs and the dependent invalidation, in ``conn``'s transaction.
    Returns the run started, if any."""
    await conn.execute(query("runs_lock"))
    started = await _one(conn, "run_start", {"total": len(FUNCTIONS)})
    if started is None:
        return None
    run_id: UUID = started["id"]
    children = [
        {"type": FUNCTION_TYPE, "payload": {"runId": str(run_id), "function": name}}
        for name in FUNCTIONS
    ]
    then = {"type": INVALIDATE_TYPE, "payload": {"runId": str(run_id)}, "on_parent_failure": "run"}
    fan = await app.afan_out(children, then, conn=conn)
    await conn.execute(
        query("run_functions_insert"),
        {"run_id": run_id, "functions": list(FUNCTIONS), "job_ids": fan.children},
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


async def function_ended(conn: Conn, run_id: UUID, function: str, outcome: Outcome) -> None:
    """Record how ``function`` ended in run ``run_id`` (once: a rescued attempt recording
    again changes nothing)."""
    params = {
        "run_id": run_id, "function": function, "status": outcome.status,
        "attempt": outcome.attempt, "error": outcome.error, "rows": outcome.rows,
        "duration_ms": None if outcome.duration_ms is None else round(outcome.duration_ms, 1),
    }  # fmt: skip
    await conn.execute(query("run_function_ended"), params)
    await notify(conn, RUNS_CHANNEL, str(run_id))


async def finish_run(
    app: App, conn: Conn, run_id: UUID, parents: Sequence[ParentJob]
) -> dict[str, Any]:
    """Invalidate the cache tags of the run's functions whose jobs (``parents``) completed
    (every web process drops them when this transaction commits), end the run, and start
    the run that waits, if any. Failed functions keep their tags: their old values stay
    valid. A function job that ended without recording it (killed, timed out) is recorded
    failed here, with its job's error."""
    await conn.execute(query("runs_lock"))
    cur = await conn.execute(query("run_outcomes"), {"run_id": run_id})
    function_of = {job_id: name for name, job_id in await cur.fetchall()}
    ended = {function_of[p.id]: p for p in parents if p.id in function_of}
    succeeded = [name for name in FUNCTIONS if name in ended and ended[name].status == "completed"]
    failed = [name for name in FUNCTIONS if name not in succeeded]
    for name in failed:
        parent = ended.get(name)
        error = (parent.error if parent else None) or "the function's job did not complete"
        await function_ended(conn, run_id, name, Outcome("failed", 0, error=error))
    tags = tags_of(succeeded)
    finished = await _one(conn, "run_finish", {"id": run_id, "failed": failed, "tags": tags})
    if finished is None:
        return {"runId": str(run_id), "status": "already ended"}
    if tags:
        message = {"tags": tags, "runId": str(run_id), "sentAt": time.time()}
        await notify(conn, CACHE_CHANNEL, json.dumps(message))
    await notify(conn, RUNS_CHANNEL, str(run_id))
    follow_up = await start_queued_run(app, conn)
    summary = f"run {finished['status']}: {len(tags)} tag(s) invalidated"
    if failed:
        summary += f"; failed: {', '.join(failed)}"
    return {
        "runId": str(run_id), "status": finished["status"], "failed": failed,
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
