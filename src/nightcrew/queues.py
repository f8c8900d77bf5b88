"""Queues as operators see them: list, pause and resume (cluster-wide, in the database).

A paused queue's jobs stay where they are and enqueueing goes on; fetches skip the queue
(fetch_jobs.sql) and workers hear of the change on the ``nightcrew_queues`` channel.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from nightcrew.errors import ConfigurationError
from nightcrew.queries import query

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


def check_queue_name(name: str) -> None:
    """Refuse a queue name that no job could have (clear message for the CLI and HTTP)."""
    if not isinstance(name, str) or not QUEUE_NAME.match(name):
        raise ConfigurationError(
            f"queue name must be 1-100 letters, digits or . _ : - characters, got {name!r}"
        )


@dataclass(frozen=True)
class QueueInfo:
    """One queue: runnable depth, running jobs, paused, throughput."""

    name: str
    depth: int
    """Jobs waiting to run (pending or retrying)."""
    running: int
    paused: bool
    paused_at: datetime | None
    jobs_per_minute: float
    """Jobs finished per minute over the last 5 whole minutes."""

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> QueueInfo:
        """Build from a ``queue_list`` row."""
        return cls(
            name=row["name"],
            depth=int(row["depth"]),
            running=int(row["running"]),
            paused=bool(row["paused"]),
            paused_at=row["paused_at"],
            jobs_per_minute=float(row["jobs_per_minute"]),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (HTTP API, CLI)."""
        return {
            "name": self.name,
            "depth": self.depth,
            "running": self.running,
            "paused": self.paused,
            "paused_at": self.paused_at.isoformat() if self.paused_at else None,
            "jobs_per_minute": round(self.jobs_per_minute, 2),
        }


def pause(conn: psycopg.Connection[Any], name: str, *, by: str | None = None) -> bool:
    """Pause queue ``name``; False when it was paused already."""
    check_queue_name(name)
    return conn.execute(query("queue_pause"), {"queue": name, "by": by}).fetchone() is not None


def resume(conn: psycopg.Connection[Any], name: str) -> bool:
    """Resume queue ``name``; False when it was not paused."""
    check_queue_name(name)
    return conn.execute(query("queue_resume"), {"queue": name}).fetchone() is not None


def list_queues(conn: psycopg.Connection[Any]) -> list[QueueInfo]:
    """Every known queue with its depth, running jobs, pause and throughput."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [QueueInfo.from_row(row) for row in cur.execute(query("queue_list")).fetchall()]


async def apaused(conn: psycopg.AsyncConnection[Any]) -> set[str]:
    """The paused queues now."""
    cur = await conn.execute(query("queue_paused"))
    return {row[0] for row in await cur.fetchall()}
