"""Operator controls: cancel and retry one job."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg

from nightcrew.queries import query


def parse_id(job_id: UUID | str | None) -> UUID | None:
    """The id as a UUID, or ``None`` when it is not one (such a job cannot exist)."""
    if isinstance(job_id, UUID):
        return job_id
    try:
        return UUID(str(job_id))
    except ValueError:
        return None


def cancel(conn: psycopg.Connection[Any], job_id: UUID | str) -> bool:
    """Cancel the job; False when it is unknown or already finished."""
    uid = parse_id(job_id)
    return uid is not None and conn.execute(query("cancel_job"), {"id": uid}).fetchone() is not None


async def acancel(conn: psycopg.AsyncConnection[Any], job_id: UUID | str) -> bool:
    """Async twin of :func:`cancel`."""
    uid = parse_id(job_id)
    if uid is None:
        return False
    cur = await conn.execute(query("cancel_job"), {"id": uid})
    return await cur.fetchone() is not None


def retry(conn: psycopg.Connection[Any], job_id: UUID | str) -> bool:
    """Retry a failed or cancelled job; False when it is in another state or unknown.

    Also False while another live (pending, processing, retrying) job holds the job's
    dedupe key: retrying it would duplicate that job. Runs in a savepoint, so losing that
    race to a concurrent enqueue leaves the caller's transaction usable.
    """
    uid = parse_id(job_id)
    if uid is None:
        return False
    try:
        with conn.transaction():
            return conn.execute(query("retry_job"), {"id": uid}).fetchone() is not None
    except psycopg.errors.UniqueViolation:  # a live job took the dedupe key meanwhile
        return False


async def aretry(conn: psycopg.AsyncConnection[Any], job_id: UUID | str) -> bool:
    """Async twin of :func:`retry`."""
    uid = parse_id(job_id)
    if uid is None:
        return False
    try:
        async with conn.transaction():
            cur = await conn.execute(query("retry_job"), {"id": uid})
            return await cur.fetchone() is not None
    except psycopg.errors.UniqueViolation:
        return False
