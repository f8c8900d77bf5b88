"""Operator controls: cancel, retry, reprioritise and discard jobs.

The one Python writer of these transitions: ``App``, the HTTP API, the dashboard and the
CLI all call the functions here, and each function runs one named statement (see
docs/architecture.md). Every function acts on the given connection, so row-level security
follows that connection's role (the HTTP layer passes its per-request connection), and
with an ``actor`` the audit entry is written by the same statement. Each job asked for gets
a :class:`ControlResult` saying what happened and, when nothing did, why.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from nightcrew.errors import NightcrewError
from nightcrew.jobs import JobStatus
from nightcrew.queries import query


class Outcome(enum.StrEnum):
    """What an action did to one job."""

    DONE = "done"
    NOT_FOUND = "not_found"
    """Unknown, or not visible to the connection's role."""
    WRONG_STATE = "wrong_state"
    """The job's state does not allow the action (see :attr:`ControlResult.status`)."""
    DEDUPE_HELD = "dedupe_held"
    """Another live job holds the job's dedupe key: retrying it would duplicate that job."""


@dataclass(frozen=True)
class ControlResult:
    """The outcome of an action on one job; truthy when the action was done."""

    job_id: UUID | None
    """``None`` when the id given was not a UUID (no such job can exist)."""
    outcome: Outcome
    status: JobStatus | None = None
    """The job's status before the action (``None`` when not found)."""

    @property
    def done(self) -> bool:
        """True when the action was done."""
        return self.outcome is Outcome.DONE

    def __bool__(self) -> bool:
        return self.done


class DedupeKeyHeld(NightcrewError):
    """A retry lost the race to a concurrent enqueue that took a retried job's dedupe key;
    nothing was changed (the statement is rolled back to its savepoint)."""


BULK_DEFAULT_LIMIT = 1000
DEDUPE_HELD_MESSAGE = "a live job holds the same dedupe_key; retrying would duplicate it"


def parse_id(job_id: UUID | str | None) -> UUID | None:
    """The id as a UUID, or ``None`` when it is not one (such a job cannot exist)."""
    if isinstance(job_id, UUID):
        return job_id
    try:
        return UUID(str(job_id))
    except ValueError:
        return None


def _params(
    ids: Sequence[UUID | str] | None,
    status: str | None,
    type: str | None,
    limit: int,
    actor: str | None,
) -> dict[str, Any]:
    return {
        "ids": [str(i) for i in ids] if ids is not None else None,
        "status": status,
        "type": type,
        "limit": limit,
        "actor": actor,
    }


def _result(row: tuple[Any, ...]) -> ControlResult:
    job_id, outcome, status = row
    return ControlResult(job_id, Outcome(outcome), JobStatus(status) if status else None)


def _one(results: list[ControlResult], uid: UUID) -> ControlResult:
    """The result of job ``uid`` among ``results`` (a statement answers for every id asked)."""
    return next((r for r in results if r.job_id == uid), ControlResult(uid, Outcome.NOT_FOUND))


def _run(conn: psycopg.Connection[Any], name: str, params: dict[str, Any]) -> list[ControlResult]:
    """Run the named control statement in a savepoint, so a lost dedupe race leaves the
    caller's transaction usable."""
    try:
        with conn.transaction():
            return [_result(row) for row in conn.execute(query(name), params).fetchall()]
    except psycopg.errors.UniqueViolation:  # a live job took a dedupe key meanwhile
        raise DedupeKeyHeld(DEDUPE_HELD_MESSAGE) from None


async def _arun(
    conn: psycopg.AsyncConnection[Any], name: str, params: dict[str, Any]
) -> list[ControlResult]:
    """Async twin of :func:`_run`."""
    try:
        async with conn.transaction():
            cur = await conn.execute(query(name), params)
            return [_result(row) for row in await cur.fetchall()]
    except psycopg.errors.UniqueViolation:
        raise DedupeKeyHeld(DEDUPE_HELD_MESSAGE) from None


# ---- cancel -----------------------------------------------------------------------------


def cancel(
    conn: psycopg.Connection[Any], job_id: UUID | str, *, actor: str | None = None
) -> ControlResult:
    """Cancel one job: a waiting job at once, a running one is told to stop.

    Wrong state when it has finished or its cancel was already requested.
    """
    uid = parse_id(job_id)
    if uid is None:
        return ControlResult(None, Outcome.NOT_FOUND)
    return _one(_run(conn, "job_cancel", _params([uid], None, None, 1, actor)), uid)


async def acancel(
    conn: psycopg.AsyncConnection[Any], job_id: UUID | str, *, actor: str | None = None
) -> ControlResult:
    """Async twin of :func:`cancel`."""
    uid = parse_id(job_id)
    if uid is None:
        return ControlResult(None, Outcome.NOT_FOUND)
    return _one(await _arun(conn, "job_cancel", _params([uid], None, None, 1, actor)), uid)


async def acancel_jobs(
    conn: psycopg.AsyncConnection[Any],
    *,
    ids: Sequence[UUID | str] | None = None,
    status: str | None = None,
    type: str | None = None,
    limit: int = BULK_DEFAULT_LIMIT,
    actor: str | None = None,
) -> list[ControlResult]:
    """Cancel the jobs ``ids`` (or, without ids, those matching ``status`` and ``type``),
    at most ``limit``; one result per changed job and per id left alone."""
    return await _arun(conn, "job_cancel", _params(ids, status, type, limit, actor))


# ---- retry ------------------------------------------------------------------------------


def retry(
    conn: psycopg.Connection[Any], job_id: UUID | str, *, actor: str | None = None
) -> ControlResult:
    """Send a failed or cancelled job back to pending with its attempts reset.

    Refused (:attr:`Outcome.DEDUPE_HELD`) while another live job holds the job's dedupe
    key, also when a concurrent enqueue takes the key mid-statement.
    """
    uid = parse_id(job_id)
    if uid is None:
        return ControlResult(None, Outcome.NOT_FOUND)
    try:
        return _one(_run(conn, "job_retry", _params([uid], None, None, 1, actor)), uid)
    except DedupeKeyHeld:
        return ControlResult(uid, Outcome.DEDUPE_HELD)


async def aretry(
    conn: psycopg.AsyncConnection[Any], job_id: UUID | str, *, actor: str | None = None
) -> ControlResult:
    """Async twin of :func:`retry`."""
    uid = parse_id(job_id)
    if uid is None:
        return ControlResult(None, Outcome.NOT_FOUND)
    try:
        return _one(await _arun(conn, "job_retry", _params([uid], None, None, 1, actor)), uid)
    except DedupeKeyHeld:
        return ControlResult(uid, Outcome.DEDUPE_HELD)


async def aretry_jobs(
    conn: psycopg.AsyncConnection[Any],
    *,
    ids: Sequence[UUID | str] | None = None,
    status: str | None = None,
    type: str | None = None,
    limit: int = BULK_DEFAULT_LIMIT,
    actor: str | None = None,
) -> list[ControlResult]:
    """Retry the jobs ``ids`` (or, without ids, the failed and cancelled ones matching
    ``status`` and ``type``), at most ``limit``. Raises :class:`DedupeKeyHeld` (nothing
    changed) when a concurrent enqueue takes a dedupe key of one of them."""
    return await _arun(conn, "job_retry", _params(ids, status, type, limit, actor))


# ---- priority ---------------------------------------------------------------------------


async def aset_priority(
    conn: psycopg.AsyncConnection[Any], job_id: UUID | str, priority: int, *, actor: str | None
) -> ControlResult:
    """Set one job's priority (any state); the caller checks the range."""
    uid = parse_id(job_id)
    if uid is None:
        return ControlResult(None, Outcome.NOT_FOUND)
    params = {"ids": [str(uid)], "priority": priority, "actor": actor}
    return _one(await _arun(conn, "job_set_priority", params), uid)


# ---- discard ----------------------------------------------------------------------------


async def adiscard_jobs(
    conn: psycopg.AsyncConnection[Any],
    *,
    ids: Sequence[UUID | str] | None = None,
    type: str | None = None,
    limit: int = BULK_DEFAULT_LIMIT,
    actor: str | None = None,
) -> list[ControlResult]:
    """Delete failed jobs (``ids``, or every failed one in sight up to ``limit``).

    Call inside a transaction: the jobs are picked, locked and audited under the
    connection's role (row-level security), then deleted by the session's own role, since
    the API role may not DELETE; the acting role is restored afterwards.
    """
    results = await _arun(conn, "job_discard", _params(ids, None, type, limit, actor))
    picked = [str(r.job_id) for r in results if r.done]
    if picked:
        await _adelete_as_session_role(conn, picked)
    return results


async def _adelete_as_session_role(conn: psycopg.AsyncConnection[Any], ids: list[str]) -> None:
    cur = await conn.execute(query("session_roles"))
    acting, session = await cur.fetchone() or (None, None)
    await conn.execute("RESET ROLE")
    await conn.execute(query("job_discard_delete"), {"ids": ids})
    if acting is not None and acting != session:
        await conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(acting)))
