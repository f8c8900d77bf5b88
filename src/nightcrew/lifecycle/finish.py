"""Finish an attempt: completed, retrying (with backoff), failed (dead letter), cancelled,
or released back to pending at shutdown. Outcomes are buffered and written in batches by
:class:`Completer`, one fenced statement per batch."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg_pool import AsyncConnectionPool

from nightcrew.queries import query

log = logging.getLogger("nightcrew.worker")


@dataclass(slots=True)
class Outcome:
    """The end of one attempt, waiting to be written. (Not frozen: a frozen dataclass's
    ``__init__`` costs half a microsecond more, once per job a worker runs; nothing
    changes an outcome once made.)"""

    job_id: UUID
    attempt: int
    status: str
    result_json: str | None = None
    error_json: str | None = None
    delay: float = 0.0

    def as_json(self) -> str:
        """This outcome as one element of ``finish_jobs``' JSON batch. The result and
        error are JSON already: they are embedded as they are, not encoded again."""
        delay = repr(float(self.delay)) if math.isfinite(self.delay) else '"Infinity"'
        return (
            f'{{"id":"{self.job_id.hex}","attempt":{self.attempt},"status":"{self.status}",'
            f'"result":{self.result_json or "null"},"error":{self.error_json or "null"},'
            f'"delay":{delay}}}'
        )


def outcomes_json(batch: list[Outcome]) -> str:
    """A batch of outcomes as one JSON array: the database parses it in one call, where
    six Python lists adapted to arrays cost ~6 us per outcome (a quarter of a worker's
    CPU in a drain)."""
    return "[" + ",".join(outcome.as_json() for outcome in batch) + "]"


def error_record(attempt: int, exc: BaseException, message: str | None = None) -> str:
    """One entry of a job's error history, as JSON."""
    return json.dumps(
        {
            "attempt": attempt,
            "type": type(exc).__name__,
            "message": message if message is not None else str(exc) or type(exc).__name__,
            "traceback": "".join(traceback.format_exception(exc)),
            "at": datetime.now(UTC).isoformat(),
        }
    )


class Completer:
    """Buffers outcomes and writes them in batches (one round trip per batch, not per job).

    A batch waits at most ``interval`` seconds. When the database is unreachable the
    outcomes stay buffered and are written once it is back; the lease fence discards any
    whose job was rescued meanwhile.
    """

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        worker_id: str,
        *,
        batch: int,
        interval: float,
    ) -> None:
        self._pool = pool
        self._worker_id = worker_id
        self._batch = batch
        self._interval = interval
        self._pending: list[Outcome] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.written = 0
        self.rejected = 0

    def add(self, outcome: Outcome) -> None:
        """Queue an outcome for the next batch."""
        self._pending.append(outcome)
        self._wake.set()

    @property
    def backlog(self) -> int:
        """Outcomes not yet written."""
        return len(self._pending)

    async def run(self) -> None:
        """Write batches until :meth:`close`."""
        failures = 0
        while not (self._closing and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            if self._interval and len(self._pending) < self._batch and not self._closing:
                await asyncio.sleep(self._interval)
            try:
                await self.flush()
                failures = 0
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                failures += 1
                delay = min(5.0, 0.05 * 2**failures)
                log.warning("writing outcomes failed (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                self._wake.set()
            except Exception:
                # Not a connectivity problem: one outcome may be poison (say, a result the
                # database refuses). Write the rest one by one so it cannot block them.
                log.exception("writing a batch of outcomes failed; writing them one by one")
                await self._flush_singly()
                self._wake.set()

    async def _flush_singly(self) -> None:
        for outcome in list(self._pending[: self._batch]):
            try:
                await self._write([outcome])
            except (psycopg.OperationalError, psycopg.InterfaceError):
                return  # connectivity: the main loop retries the whole backlog
            except Exception:
                log.exception(
                    "dropping the outcome of job %s: the database refuses it; "
                    "its lease will expire and the job will be retried",
                    outcome.job_id,
                )
            self._pending.remove(outcome)

    @property
    def held(self) -> list[tuple[UUID, int]]:
        """(job id, attempt) of outcomes not yet written: their leases must stay renewed."""
        return [(o.job_id, o.attempt) for o in self._pending]

    async def flush(self) -> None:
        """Write everything buffered now."""
        while self._pending:
            batch = self._pending[: self._batch]
            await self._write(batch)
            del self._pending[: len(batch)]

    async def _write(self, batch: list[Outcome]) -> None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                query("finish_jobs"),
                {"worker_id": self._worker_id, "outcomes": outcomes_json(batch)},
                # Batch statements: plan with the real arrays every time (see queries.py).
                prepare=False,
            )
            written = len(await cur.fetchall())
        self.written += written
        if written < len(batch):
            self.rejected += len(batch) - written
            log.info("%d outcomes refused: lease lost", len(batch) - written)

    async def close(self) -> None:
        """Write what is left and stop :meth:`run`."""
        self._closing = True
        self._wake.set()
