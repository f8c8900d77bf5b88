"""What a handler sees while it runs: :class:`JobContext` (async handlers) and
:class:`SyncJobContext` (plain ``def`` handlers, run in a thread)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from nightcrew.errors import JobCancelled, LeaseLost
from nightcrew.limits import RECHECK_SECONDS, Limit, LimitSlot, SlotTiming, enter_slot
from nightcrew.parents import Parents, SyncParents
from nightcrew.queries import query
from nightcrew.stages import Stages

if TYPE_CHECKING:
    from nightcrew.app import App

_UNSET: Any = object()


@dataclass(frozen=True)
class JobInfo:
    """The job being run, as fetched for this attempt."""

    id: UUID
    type: str
    queue: str
    attempt: int
    """1-based: 1 on the first run, 2 on the first retry..."""
    max_attempts: int
    payload: Any
    """The stored JSON payload (the handler's ``payload`` argument may be a model of it)."""
    priority: int
    user_id: str | None
    created_at: datetime
    parent_count: int = 0
    """How many parents this job waited for (``depends_on``); see ``ctx.parents``."""

    @property
    def has_parents(self) -> bool:
        """Whether this job waited for parents (``depends_on``)."""
        return self.parent_count > 0


def _save_params(
    ctx: JobContext,
    progress: float | None,
    stage: str | None,
    metrics: dict[str, Any] | None,
    checkpoint: Any,
) -> dict[str, Any]:
    if progress is not None:
        if isinstance(progress, bool) or not isinstance(progress, int | float):
            raise TypeError(f"progress must be a number, got {progress!r}")
        if not math.isfinite(progress) or not 0 <= progress <= 100:
            raise ValueError(f"progress must be between 0 and 100, got {progress}")
    if metrics is not None and not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
    return {
        "id": ctx.job.id,
        "worker_id": ctx.worker_id,
        "attempt": ctx.job.attempt,
        "progress": progress,
        "stage": stage,
        "metrics": None if metrics is None else json.dumps(metrics, allow_nan=False),
        "set_checkpoint": checkpoint is not _UNSET,
        "checkpoint": None if checkpoint is _UNSET else json.dumps(checkpoint, allow_nan=False),
    }


class JobContext:
    """Handle of one running attempt: progress, checkpoints and fenced transactions.

    Every write goes through the lease: when this worker no longer owns the job (it was
    rescued elsewhere) the write fails with :class:`LeaseLost`; when the job was cancelled
    it fails with :class:`JobCancelled`, which interrupts the handler.
    """

    def __init__(
        self,
        app: App,
        job: JobInfo,
        checkpoint: Any,
        worker_id: str,
        *,
        lease_seconds: float | None = None,
        leased_at: float | None = None,
    ) -> None:
        self.app = app
        self.job = job
        self.checkpoint: Any = checkpoint
        """The last saved checkpoint (from an earlier attempt or this one); ``None`` at first."""
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds or app.settings.lease_seconds
        """How long a renewal of this attempt's lease lasts."""
        self.lease_renewed_at = time.monotonic() if leased_at is None else leased_at
        """``time.monotonic()`` when the last proven renewal of the lease was sent: the lease
        lasts at least until ``lease_renewed_at + lease_seconds``."""
        self._cancelled = False
        self._lost = False
        self._interrupted = False  # set when the worker gave up on a thread (timeout, stop)
        self._tx: psycopg.AsyncConnection[Any] | None = None
        self.parents = Parents(self)
        """The parent jobs (id, type, status, result, error), read when the handler asks:
        ``len(ctx.parents)``, ``await ctx.parents.all()``, ``await ctx.parents.summary()``,
        ``async for parent in ctx.parents`` (see :class:`nightcrew.Parents`). Empty for a
        job without dependencies."""
        self.limit_slot: LimitSlot | None = None
        """For a job type with ``limits=``: when this attempt started, as the late-entry
        guard checked it (within 2.5 % of the rate's period after its slot); else ``None``."""

    @property
    def cancelled(self) -> bool:
        """True once cancellation was requested; the next save or transaction raises."""
        return self._cancelled

    @property
    def lease_lost(self) -> bool:
        """True once this worker learned it no longer owns the job (or can no longer prove
        it does)."""
        return self._lost

    @property
    def interrupted(self) -> bool:
        """True once the worker gave up waiting for this attempt (timeout or shutdown)."""
        return self._interrupted

    # ---- called by the worker (not by handlers) ----

    def mark_lease_lost(self) -> None:
        """The lease is gone (or can no longer be proven): refuse every further write."""
        self._lost = True

    def request_cancel(self) -> None:
        """Cancellation was requested: the next save or transaction raises JobCancelled."""
        self._cancelled = True

    def interrupt(self) -> None:
        """The worker stopped waiting for this attempt: refuse its further writes."""
        self._interrupted = True

    def note_lease_renewed(self, sent_at: float) -> None:
        """A renewal sent at ``sent_at`` (``time.monotonic()``) succeeded."""
        self.lease_renewed_at = max(self.lease_renewed_at, sent_at)

    @property
    def lease_deadline(self) -> float:
        """``time.monotonic()`` before which the lease surely has not expired."""
        return self.lease_renewed_at + self.lease_seconds

    def _raise_if_stopped(self) -> None:
        if self._lost:
            raise LeaseLost(f"job {self.job.id}: lease lost")
        if self._interrupted:
            raise JobCancelled(f"job {self.job.id}: attempt interrupted (timeout or shutdown)")
        if self._cancelled:
            raise JobCancelled(f"job {self.job.id} was cancelled")

    def _after_write(self, row: tuple[Any, ...] | None, params: dict[str, Any]) -> None:
        if row is None:
            self._lost = True
            raise LeaseLost(f"job {self.job.id}: lease lost, write refused")
        if params["set_checkpoint"]:
            self.checkpoint = json.loads(params["checkpoint"])
        if row[0]:
            self._cancelled = True
            raise JobCancelled(f"job {self.job.id} was cancelled")

    async def save(
        self,
        *,
        progress: float | None = None,
        stage: str | None = None,
        metrics: dict[str, Any] | None = None,
        checkpoint: Any = _UNSET,
    ) -> None:
        """Record progress (0-100), stage, metrics (merged into the job's) and/or a checkpoint.

        Inside :meth:`transaction` the write joins that transaction.
        """
        self._raise_if_stopped()
        params = _save_params(self, progress, stage, metrics, checkpoint)
        if self._tx is not None:
            cur = await self._tx.execute(query("save_progress"), params)
            row = await cur.fetchone()
        else:
            pool = await self.app.apool()
            async with pool.connection() as conn:
                cur = await conn.execute(query("save_progress"), params)
                row = await cur.fetchone()
        self._after_write(row, params)

    def stages(
        self,
        ranges: Mapping[str, tuple[float, float]] | Iterable[tuple[str, float, float]],
        *,
        floor: float = 0.0,
    ) -> Stages:
        """This job's declared stages and their progress ranges (see
        :class:`nightcrew.Stages`): ``await stages.enter(name, total=n)``, then
        ``await stages.advance(done)``; ``floor`` is progress an earlier attempt reached."""
        return Stages(self, ranges, floor=floor)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A database transaction fenced by this attempt's lease.

        The job row is locked first (proving the lease), so the work done on the yielded
        connection and any ``save(checkpoint=...)`` inside commit together, or not at all.
        """
        self._raise_if_stopped()
        if self._tx is not None:
            raise RuntimeError("ctx.transaction() blocks cannot be nested")
        pool = await self.app.apool()
        async with pool.connection() as conn, conn.transaction():
            sent_at = time.monotonic()
            cur = await conn.execute(query("lock_lease"), _lease_params(self))
            self._after_write(await cur.fetchone(), {"set_checkpoint": False})
            self._tx = conn
            try:
                yield conn
            finally:
                self._tx = None
            if self._renew_before_commit(sent_at):
                sent_at = time.monotonic()
                await conn.execute(query("lock_lease"), _lease_params(self))
        self.note_lease_renewed(sent_at)  # committed: the extended lease holds

    @asynccontextmanager
    async def limit(
        self, key: str, *, rate: str | None = None, concurrency: int | None = None
    ) -> AsyncIterator[LimitSlot]:
        """Wait until the keyed limit allows one more call, across every worker (see
        :class:`nightcrew.Limit`); with ``concurrency`` hold a slot until the block exits.

        The block is entered at most 2.5 % of the rate's period after its slot (``"5/s"``:
        25 ms; ``LATE_ENTRY_FRACTION``): a wait that ends later (this process was stalled)
        lets the slot pass unused and takes a new one, so late calls cannot bunch up with
        punctual ones at the provider. The :class:`nightcrew.LimitSlot` it yields says when
        the block was entered.

        No database connection is held while waiting, and the attempt is not spent: the
        lease is renewed as usual. A cancel request ends the wait within 0.25 s
        (:class:`JobCancelled`), as does a lost lease (:class:`LeaseLost`).
        """
        params = _acquire_params(self, Limit(key, rate=rate, concurrency=concurrency))
        forfeited = 0
        while True:
            slot_id, timing = await self._acquire_limit(params)
            try:
                await self._wait_for_slot(timing)
            except BaseException:
                await self._release_limit(slot_id)
                raise
            # No await between this check and the block: it is entered in this step.
            entered = enter_slot(timing, forfeited)
            if entered is not None:
                break
            # Woke too late: calling now could put one call too many into the window.
            await self._release_limit(slot_id)
            forfeited += 1
        try:
            yield entered
        finally:
            await self._release_limit(slot_id)

    async def _acquire_limit(self, params: dict[str, Any]) -> tuple[Any, SlotTiming]:
        """Take a slot (asking again every RECHECK_SECONDS while concurrency is full)."""
        while True:
            self._raise_if_stopped()
            pool = await self.app.apool()
            async with pool.connection() as conn:
                sent = time.monotonic()
                cur = await conn.execute(query("limit_acquire"), params)
                granted, wait, slot_id, slot_after, period = await _one_row(cur)
                reply = time.monotonic()
            if granted:
                return slot_id, SlotTiming(sent, reply, wait, slot_after, period)
            await asyncio.sleep(RECHECK_SECONDS)  # concurrency full: ask again

    async def _wait_for_slot(self, timing: SlotTiming) -> None:
        """Sleep until the rate slot (taken already: no need to ask again), noticing a
        cancel or a lost lease."""
        while (left := timing.not_before - time.monotonic()) > 0:
            await asyncio.sleep(min(left, RECHECK_SECONDS))
            self._raise_if_stopped()
        self._raise_if_stopped()

    async def _release_limit(self, slot_id: Any) -> None:
        """Give a concurrency slot back (nothing to do without one)."""
        if slot_id is None:
            return
        pool = await self.app.apool()
        async with pool.connection() as conn:
            await conn.execute(query("limit_release"), {"slot_id": slot_id})

    def _renew_before_commit(self, locked_at: float) -> bool:
        """Whether a transaction locked since ``locked_at`` must extend its lease again
        before it commits: heartbeats skipped its locked row meanwhile."""
        return time.monotonic() - locked_at > self.lease_seconds / 4


async def _one_row(cur: psycopg.AsyncCursor[Any]) -> tuple[Any, ...]:
    row = await cur.fetchone()
    assert row is not None  # the function always returns one row
    return tuple(row)


def _acquire_params(ctx: JobContext, limit: Limit) -> dict[str, Any]:
    """Parameters of ``limit_acquire`` for one ``ctx.limit`` call (its key taken as is)."""
    grant = limit.as_grant(limit.key)
    return {
        "key": limit.key,
        "rate_count": grant["rate_count"],
        "rate_seconds": grant["rate_seconds"],
        "concurrency": limit.concurrency,
        "job_id": ctx.job.id,
        "attempt": ctx.job.attempt,
    }


def _lease_params(ctx: JobContext) -> dict[str, Any]:
    return {
        "id": ctx.job.id,
        "worker_id": ctx.worker_id,
        "attempt": ctx.job.attempt,
        "lease_seconds": ctx.lease_seconds,
    }


class SyncJobContext:
    """The context given to plain ``def`` handlers (which run in a worker thread)."""

    def __init__(self, ctx: JobContext, loop: asyncio.AbstractEventLoop) -> None:
        self._ctx = ctx
        self._loop = loop
        self._tx: psycopg.Connection[Any] | None = None
        self._parents = SyncParents(ctx)

    @property
    def job(self) -> JobInfo:
        """See :attr:`JobContext.job`."""
        return self._ctx.job

    @property
    def checkpoint(self) -> Any:
        """See :attr:`JobContext.checkpoint`."""
        return self._ctx.checkpoint

    @property
    def parents(self) -> SyncParents:
        """The parent jobs, read when the handler asks (see :class:`nightcrew.SyncParents`):
        ``len(ctx.parents)``, ``ctx.parents.all()``, ``ctx.parents.summary()``, ``for
        parent in ctx.parents``."""
        return self._parents

    @property
    def cancelled(self) -> bool:
        """See :attr:`JobContext.cancelled`."""
        return self._ctx.cancelled

    @property
    def limit_slot(self) -> LimitSlot | None:
        """See :attr:`JobContext.limit_slot` (checked before this thread was handed the
        handler)."""
        return self._ctx.limit_slot

    def save(
        self,
        *,
        progress: float | None = None,
        stage: str | None = None,
        metrics: dict[str, Any] | None = None,
        checkpoint: Any = _UNSET,
    ) -> None:
        """See :meth:`JobContext.save`."""
        if self._tx is None:
            future = asyncio.run_coroutine_threadsafe(
                self._ctx.save(
                    progress=progress, stage=stage, metrics=metrics, checkpoint=checkpoint
                ),
                self._loop,
            )
            future.result()
            return
        self._ctx._raise_if_stopped()
        params = _save_params(self._ctx, progress, stage, metrics, checkpoint)
        row = self._tx.execute(query("save_progress"), params).fetchone()
        self._ctx._after_write(row, params)

    @contextmanager
    def limit(
        self, key: str, *, rate: str | None = None, concurrency: int | None = None
    ) -> Iterator[LimitSlot]:
        """See :meth:`JobContext.limit`; waits in this thread (no connection held)."""
        params = _acquire_params(self._ctx, Limit(key, rate=rate, concurrency=concurrency))
        forfeited = 0
        while True:
            slot_id, timing = self._acquire_limit(params)
            try:
                self._wait_for_slot(timing)
            except BaseException:
                self._release_limit(slot_id)
                raise
            entered = enter_slot(timing, forfeited)
            if entered is not None:
                break
            self._release_limit(slot_id)  # woke too late for the slot: take a new one
            forfeited += 1
        try:
            yield entered
        finally:
            self._release_limit(slot_id)

    def _acquire_limit(self, params: dict[str, Any]) -> tuple[Any, SlotTiming]:
        ctx = self._ctx
        while True:
            ctx._raise_if_stopped()
            with ctx.app.pool().connection() as conn:
                sent = time.monotonic()
                row = conn.execute(query("limit_acquire"), params).fetchone()
                reply = time.monotonic()
            assert row is not None  # the function always returns one row
            granted, wait, slot_id, slot_after, period = row
            if granted:
                return slot_id, SlotTiming(sent, reply, wait, slot_after, period)
            time.sleep(RECHECK_SECONDS)  # concurrency full: ask again

    def _wait_for_slot(self, timing: SlotTiming) -> None:
        while (left := timing.not_before - time.monotonic()) > 0:
            time.sleep(min(left, RECHECK_SECONDS))
            self._ctx._raise_if_stopped()
        self._ctx._raise_if_stopped()

    def _release_limit(self, slot_id: Any) -> None:
        if slot_id is not None:
            with self._ctx.app.pool().connection() as conn:
                conn.execute(query("limit_release"), {"slot_id": slot_id})

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """See :meth:`JobContext.transaction`; yields a synchronous connection."""
        self._ctx._raise_if_stopped()
        if self._tx is not None:
            raise RuntimeError("ctx.transaction() blocks cannot be nested")
        ctx = self._ctx
        with ctx.app.pool().connection() as conn, conn.transaction():
            sent_at = time.monotonic()
            row = conn.execute(query("lock_lease"), _lease_params(ctx)).fetchone()
            ctx._after_write(row, {"set_checkpoint": False})
            self._tx = conn
            try:
                yield conn
            finally:
                self._tx = None
            if ctx._renew_before_commit(sent_at):
                sent_at = time.monotonic()
                conn.execute(query("lock_lease"), _lease_params(ctx))
        # Committed: the extended lease holds. The worker's event loop reads the renewal
        # time, so it is updated there, not from this thread.
        self._loop.call_soon_threadsafe(ctx.note_lease_renewed, sent_at)
