"""The worker loop: fetch -> run -> finish, with heartbeats, rescue and graceful shutdown.

One asyncio task per running attempt (the :class:`~nightcrew.lifecycle.executor.Executor`
turns it into an outcome); the loop keeps ``concurrency`` attempts running, fetching a
batch whenever slots are free. It wakes on LISTEN/NOTIFY and polls as a fallback, so it
also runs where LISTEN is unavailable (PgBouncer in transaction mode without a
``direct_url``: ``listen=False``). With a ``direct_url`` the fetch and LISTEN connections
bypass the pooler and everything else goes through it.

Leases are renewed on a connection of their own, so handlers holding every pool connection
cannot starve them; an attempt whose lease could not be renewed in time is stopped before
the lease runs out, so that it never runs beside the retry another worker starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from nightcrew.context import JobContext, JobInfo
from nightcrew.db.listen import listen_forever
from nightcrew.errors import ConfigurationError
from nightcrew.heap import freeze_startup_heap
from nightcrew.ids import uuid7
from nightcrew.lifecycle.executor import Executor, released_outcome
from nightcrew.lifecycle.fetch import (
    CHECKPOINT_COLUMN,
    TIMEOUT_COLUMN,
    configure_fetch_session,
    fetch_jobs,
    fetched_job,
)
from nightcrew.lifecycle.finish import Completer, Outcome
from nightcrew.lifecycle.heartbeat import renew_leases
from nightcrew.lifecycle.rescue import rescue_expired
from nightcrew.limits import SlotTiming, enter_slot, grant, grant_entry
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.worker")

# Errors that mean "the database is unreachable right now": retry, don't crash the worker.
DB_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)

# An attempt whose lease could not be renewed is stopped this fraction of the lease before
# the lease runs out (less when heartbeats are sparse: see Worker.lease_margin): time for
# its handler to stop and for a write in flight to land.
LEASE_SAFETY_FRACTION = 0.25

# The least time between two fetches woken by the slots of jobs given back for a limit.
MIN_LIMIT_WAKE = 0.02


@dataclass
class _Running:
    """One attempt running in this worker."""

    ctx: JobContext
    task: asyncio.Task[None]


@dataclass
class _Waiting:
    """A fetched attempt not started yet: an earlier attempt of the job still runs here."""

    info: JobInfo
    checkpoint: Any
    timeout: float | None
    leased_at: float
    """``time.monotonic()`` when its lease was last taken or renewed."""
    slot: SlotTiming | None = None
    """Its granted limit slot: it starts only if not too late for it (else given back)."""


class Worker:
    """Runs jobs of an :class:`~nightcrew.App` until :meth:`stop` is called.

    ``queues`` defaults to every queue of the app's registered job types.
    """

    def __init__(
        self,
        app: App,
        *,
        queues: Sequence[str] | None = None,
        concurrency: int | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings
        self.queues = sorted(set(queues) if queues else {t.queue for t in app.registry.values()})
        if not self.queues:
            raise ConfigurationError("the worker has no queue: register a job type or pass queues")
        self.concurrency = concurrency or self.settings.concurrency
        # While jobs run, fetch again once a quarter of the slots (or of a batch) are free.
        self._refill_at = max(1, min(self.concurrency, self.settings.fetch_batch) // 4)
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid7().hex[-8:]}"
        self.executor = Executor(app.registry)
        self.running: dict[tuple[UUID, int], _Running] = {}
        """Attempts running here by (job id, attempt), including threads that outlived
        their lease (they still take a slot)."""
        self._attempt_here: dict[UUID, int] = {}  # job id -> its attempt running here
        self._waiting: dict[UUID, _Waiting] = {}  # started once the earlier attempt ends
        self._lost_here: set[UUID] = set()  # running here with a lost lease: never fetch
        self._paused: set[str] = set()  # queues paused since this worker started (NOTIFY)
        self._due: list[float] = []  # heap (monotonic): slots of jobs given back here
        self.processed = 0
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._completer: Completer | None = None
        self._listening = asyncio.Event()
        self._fetch_conn: psycopg.AsyncConnection[Any] | None = None
        self._lease_conn: psycopg.AsyncConnection[Any] | None = None

    # ---- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop fetching; running jobs get ``shutdown_grace_seconds`` to finish."""
        self._stopping.set()
        self._wake.set()
        self._slot_free.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping.is_set()

    async def wait_listening(self, timeout: float = 10.0) -> None:
        """Wait until LISTEN is active (tests and benchmarks use this)."""
        await asyncio.wait_for(self._listening.wait(), timeout)

    async def run(self) -> None:
        """Run until :meth:`stop`; then drain gracefully and return."""
        if self.settings.gc_freeze:
            freeze_startup_heap()
        pool = await self.app.apool()
        self._completer = Completer(
            pool,
            self.id,
            batch=self.settings.complete_batch,
            interval=self.settings.complete_interval_ms / 1000,
        )
        await self._with_retry(self._register)
        helpers = [
            asyncio.create_task(self._completer.run(), name="nightcrew-completer"),
            asyncio.create_task(self._heartbeat_loop(), name="nightcrew-heartbeat"),
            asyncio.create_task(self._lease_watchdog(), name="nightcrew-lease-watchdog"),
            asyncio.create_task(self._rescue_loop(), name="nightcrew-rescue"),
        ]
        if self.settings.listen:
            helpers.append(asyncio.create_task(self._listen_loop(), name="nightcrew-listen"))
        try:
            await self._fetch_loop()
            await self._close_fetch_connection()
            await self._shutdown()
        finally:
            await self._close_fetch_connection()
            await self._completer.close()
            try:
                # Bounded: with the database gone for good, unwritten outcomes are given up
                # (their leases expire and the jobs are rescued, then re-run).
                await asyncio.wait_for(helpers[0], timeout=self.settings.lease_seconds)
            except TimeoutError:
                log.error(
                    "gave up writing %d outcomes: database unreachable", self._completer.backlog
                )
            for task in helpers[1:]:
                task.cancel()
            await asyncio.gather(*helpers[1:], return_exceptions=True)
            await self._close_lease_connection()
            with contextlib.suppress(psycopg.Error):
                async with pool.connection() as conn:
                    await conn.execute(query("deregister_worker"), {"id": self.id})
            self._stopped.set()

    async def run_until_idle(self, *, timeout: float = 60.0) -> int:
        """Run until no job is runnable or running, then stop; return jobs processed.

        Meant for tests and scripts (jobs scheduled in the future are left alone; a retry
        due within a second is waited for, so a short backoff cannot end the run early).
        """
        runner = asyncio.create_task(self.run())
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await asyncio.sleep(0.02)
                    if self.running or (self._completer and self._completer.backlog):
                        continue
                    if not await self._has_runnable():
                        break
        finally:
            self.stop()
            await runner
        return self.processed

    async def _has_runnable(self) -> bool:
        pool = await self.app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT EXISTS (SELECT 1 FROM nightcrew.jobs WHERE queue = ANY(%s)"
                " AND status IN ('pending', 'retrying', 'processing')"
                " AND pending_parents = 0"  # a dependent waits for its parents to end
                " AND run_at <= now() + interval '1 second'"
                " AND (status = 'processing'"
                "      OR queue NOT IN (SELECT queue FROM nightcrew.queue_pauses)))",
                (self.queues,),
            )
            row = await cur.fetchone()
        return bool(row and row[0])

    # ---- fetching -----------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            free = self.concurrency - len(self.running)
            if free <= 0 or (self.running and free < self._refill_at):
                # Busy: refill in batches, not one query per finished job.
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            limit = min(free, self.settings.fetch_batch)
            self._wake.clear()
            leased_at = time.monotonic()  # the leases last at least lease_seconds from here
            try:
                rows = await self._fetch(limit)
                failures = 0
            except DB_UNAVAILABLE as exc:
                await self._close_fetch_connection()
                failures += 1
                delay = min(5.0, 0.05 * 2**failures)
                log.warning("fetch failed (%s); retrying in %.2fs", exc, delay)
                await self._sleep_unless_stopping(delay)
                continue
            fetched = len(rows)
            if self._paused:  # the fetch skips paused queues: these were resumed
                self._paused.difference_update(row[2] for row in rows)
            try:
                rows, slots = await self._grant_limited(rows)
            except DB_UNAVAILABLE as exc:
                # The limited jobs just leased stay leased: rescued when their leases expire.
                await self._close_fetch_connection()
                log.warning("limit grant failed (%s)", exc)
                rows, slots = [r for r in rows if not self._limits_of(r)], {}
            for row in rows:
                self._start(row, leased_at, slot=slots.get(row[0]) if slots else None)
            if fetched < limit:
                # asyncio.timeout, not wait_for: no extra task between a NOTIFY and the fetch.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_seconds()):
                        await self._wake.wait()

    def _idle_seconds(self) -> float:
        """How long an idle fetch loop waits for a NOTIFY: the poll interval, or less when
        a job this worker gave back to wait for a limit becomes due sooner."""
        now = time.monotonic()
        while self._due and self._due[0] <= now:
            heapq.heappop(self._due)
        if not self._due:
            return self.settings.poll_seconds
        # Not sooner than MIN_LIMIT_WAKE apart: one fetch then takes every job due by then.
        return min(self.settings.poll_seconds, max(MIN_LIMIT_WAKE, self._due[0] - now))

    def _limits_of(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        spec = self.app.registry.get(row[1])
        return spec.limits if spec is not None else ()

    async def _grant_limited(
        self, rows: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], dict[UUID, SlotTiming]]:
        """Pass the fetched jobs that have limits through the grant step: the rows that
        may start (with the timing of their slot, by job id); the others were given back.
        Jobs without limits pass untouched, at no cost."""
        entries = []
        for row in rows:
            limits = self._limits_of(row)
            if limits:
                job = {"type": row[1], "queue": row[2], "payload": row[3], "user_id": row[9]}
                entries.append(grant_entry(row[0], row[5], limits, job))
        if not entries:
            return rows, {}
        slots = await self._grant(entries)
        now = time.monotonic()
        for slot in slots.values():
            if slot.wait < 0:  # given back: fetch again when its reserved slot comes
                heapq.heappush(self._due, now - slot.wait)
        granted = {job_id: slot for job_id, slot in slots.items() if slot.wait >= 0}
        kept = [r for r in rows if not self._limits_of(r) or r[0] in granted]
        return kept, granted

    async def _grant(self, entries: list[dict[str, Any]]) -> dict[UUID, SlotTiming]:
        if not self.settings.listen and not self.app.behind_pooler:  # as _fetch decides
            pool = await self.app.apool()
            async with pool.connection() as conn:
                return await grant(conn, entries)
        if self._fetch_conn is None:
            self._fetch_conn = await self._open_fetch_connection()
        return await grant(self._fetch_conn, entries)

    async def _fetch(self, limit: int) -> list[tuple[Any, ...]]:
        if not self.settings.listen and not self.app.behind_pooler:
            # Maybe behind a transaction pooler (PgBouncer) with no direct URL: no session.
            pool = await self.app.apool()
            async with pool.connection() as conn:
                return await self._fetch_on(conn, limit, prepare=None)
        if self._fetch_conn is None:
            self._fetch_conn = await self._open_fetch_connection()
        return await self._fetch_on(self._fetch_conn, limit, prepare=True)

    async def _fetch_on(
        self, conn: psycopg.AsyncConnection[Any], limit: int, *, prepare: bool | None
    ) -> list[tuple[Any, ...]]:
        return await fetch_jobs(
            conn,
            worker_id=self.id,
            queues=self.queues,
            limit=limit,
            lease_seconds=self.settings.lease_seconds,
            exclude=list(self._lost_here),
            prepare=prepare,
        )

    async def _open_fetch_connection(self) -> psycopg.AsyncConnection[Any]:
        """The worker's own fetch connection: one warm backend on the pickup path, and the
        fetch planned once (see FETCH_SESSION_SETTINGS)."""
        # Session settings and a prepared plan: never through a transaction pooler.
        conn = await psycopg.AsyncConnection.connect(self.app.direct_url, autocommit=True)
        try:
            await configure_fetch_session(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _close_fetch_connection(self) -> None:
        conn, self._fetch_conn = self._fetch_conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _start(
        self, row: tuple[Any, ...], leased_at: float, *, slot: SlotTiming | None = None
    ) -> None:
        info = fetched_job(row)
        checkpoint, timeout = row[CHECKPOINT_COLUMN], row[TIMEOUT_COLUMN]
        earlier = self._attempt_here.get(info.id)
        if earlier is None:
            self._launch(info, checkpoint, timeout, leased_at, slot)
            return
        # Fetched again, so the earlier attempt's lease is gone for sure, but its handler
        # still runs (a thread that cannot be stopped): start this one after it returns.
        log.warning("job %s: attempt %d waits for attempt %d to stop", info.id,
                    info.attempt, earlier)  # fmt: skip
        self._stop_lost(self.running[(info.id, earlier)], "lease lost")
        self._waiting[info.id] = _Waiting(info, checkpoint, timeout, leased_at, slot)

    def _launch(
        self,
        info: JobInfo,
        checkpoint: Any,
        timeout: float | None,
        leased_at: float,
        slot: SlotTiming | None,
    ) -> None:
        ctx = JobContext(
            self.app,
            info,
            checkpoint,
            self.id,
            lease_seconds=self.settings.lease_seconds,
            leased_at=leased_at,
        )
        task = asyncio.create_task(self._run_job(ctx, timeout, slot))
        self.running[(info.id, info.attempt)] = _Running(ctx, task)
        self._attempt_here[info.id] = info.attempt

    def _forget(self, info: JobInfo) -> None:
        """An attempt has returned: free its slot, then start a later attempt of the same
        job that waited for it (or, when stopping, give that one back)."""
        del self.running[(info.id, info.attempt)]
        del self._attempt_here[info.id]
        self._slot_free.set()
        if self._lost_here:  # (both usually empty: no hashing of the id when they are)
            self._lost_here.discard(info.id)
        waiting = self._waiting.pop(info.id, None) if self._waiting else None
        if waiting is None:
            return
        if self._stopping.is_set() and self._completer is not None:
            self._completer.add(released_outcome(waiting.info))
        else:
            self._launch(waiting.info, waiting.checkpoint, waiting.timeout,
                         waiting.leased_at, waiting.slot)  # fmt: skip

    def _stop_lost(self, entry: _Running, why: str) -> None:
        """Stop an attempt whose lease is lost (or can no longer be proven): its writes are
        refused from now on and nothing is recorded for it."""
        if entry.ctx.lease_lost:
            return
        log.warning("job %s attempt %d: %s; stopping its handler", entry.ctx.job.id,
                    entry.ctx.job.attempt, why)  # fmt: skip
        entry.ctx.mark_lease_lost()
        self._lost_here.add(entry.ctx.job.id)
        entry.task.cancel()

    # ---- running one attempt -----------------------------------------------------------

    async def _run_job(
        self, ctx: JobContext, timeout: float | None, slot: SlotTiming | None = None
    ) -> None:
        outcome: Outcome | None = None
        try:
            if slot is not None and not await self._enter_slot(ctx, slot):
                outcome = released_outcome(ctx.job)  # given back unrun
                return
            outcome = await self.executor.execute(ctx, timeout)
        finally:
            self._forget(ctx.job)
            self.processed += 1
            if outcome is not None and self._completer is not None:
                self._completer.add(outcome)

    async def _enter_slot(self, ctx: JobContext, slot: SlotTiming) -> bool:
        """Wait for a granted job's rate slot (it holds its lease meanwhile: HOLD_SECONDS);
        False when it must not start: paused or stopping while it waited, or too late for
        its slot (LATE_ENTRY_FRACTION: this process was stalled, or the grant's reply read
        late; starting now could put one call too many into the rate's window)."""
        if (delay := slot.not_before - time.monotonic()) > 0:
            await asyncio.sleep(delay)
            if ctx.job.queue in self._paused or self._stopping.is_set():
                return False
        # No await from here to the handler's call: an async handler starts in this step.
        entered = enter_slot(slot)
        if entered is None:
            log.info("job %s: %s late for its rate slot; given back", ctx.job.id,
                     f"{slot.lateness(time.monotonic()):.3f}s")  # fmt: skip
            return False
        ctx.limit_slot = entered
        return True

    # ---- background duties ----------------------------------------------------------------

    async def _register(self) -> None:
        pool = await self.app.apool()
        async with pool.connection() as conn:
            await conn.execute(
                query("register_worker"),
                {
                    "id": self.id,
                    "hostname": socket.gethostname(),
                    "pid": os.getpid(),
                    "queues": self.queues,
                    "concurrency": self.concurrency,
                },
            )

    async def _with_retry(self, step: Any) -> None:
        for attempt in range(1, 1_000_000):
            try:
                await step()
                return
            except DB_UNAVAILABLE as exc:
                delay = min(5.0, 0.1 * 2**attempt)
                log.warning("database unavailable (%s); retrying in %.1fs", exc, delay)
                await self._sleep_unless_stopping(delay)
                if self._stopping.is_set():
                    return

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                # Bounded: a renewal that cannot get through within a lease is worthless.
                async with asyncio.timeout(self.settings.lease_seconds):
                    await self.heartbeat()
            except (psycopg.Error, TimeoutError) as exc:
                # Whatever the error, keep trying: the lease watchdog stops the handlers
                # whose leases are not renewed in time.
                log.warning("heartbeat failed: %s", exc or "timed out")
                await self._close_lease_connection()

    async def heartbeat(self) -> None:
        """Renew the leases of running jobs; stop the ones this worker lost."""
        attempts = list(self.running) + [(i, w.info.attempt) for i, w in self._waiting.items()]
        held = attempts + (self._completer.held if self._completer is not None else [])
        # (The completer's outcomes are finished but not yet written: their leases too.)
        if self._lease_conn is None:
            self._lease_conn = await self._open_lease_connection()
        conn = self._lease_conn
        await conn.execute(query("touch_worker"), {"id": self.id})
        if not held:
            return
        sent_at = time.monotonic()
        alive = await renew_leases(
            conn, worker_id=self.id, held=held, lease_seconds=self.settings.lease_seconds
        )
        self._apply_renewals(attempts, alive, sent_at)

    def _apply_renewals(
        self,
        attempts: list[tuple[UUID, int]],
        alive: dict[tuple[UUID, int], bool],
        sent_at: float,
    ) -> None:
        """Record which of ``attempts`` a renewal sent at ``sent_at`` kept, and pass on
        cancel requests; stop the attempts whose lease is lost."""
        for key in attempts:
            job_id, attempt = key
            running = self.running.get(key)
            if running is not None:
                if key not in alive:
                    self._stop_lost(running, "lease lost")
                    continue
                running.ctx.note_lease_renewed(sent_at)
                if alive[key]:
                    running.ctx.request_cancel()
            elif (waiting := self._waiting.get(job_id)) and waiting.info.attempt == attempt:
                self._renewed_waiting(waiting, alive.get(key), sent_at)

    def _renewed_waiting(
        self, waiting: _Waiting, cancel_requested: bool | None, sent_at: float
    ) -> None:
        """A renewal's news of an attempt waiting for its predecessor to stop."""
        info = waiting.info
        if cancel_requested is None:
            log.warning("job %s: lease lost before attempt %d began", info.id, info.attempt)
            del self._waiting[info.id]
        elif cancel_requested and self._completer is not None:
            del self._waiting[info.id]  # cancelled before it began: it never runs
            self._completer.add(Outcome(info.id, info.attempt, "cancelled"))
        else:
            waiting.leased_at = max(waiting.leased_at, sent_at)

    async def _open_lease_connection(self) -> psycopg.AsyncConnection[Any]:
        """The worker's own connection for lease renewals: never queued behind handlers
        that hold every pool connection. Options as the pools' (behind a transaction pooler:
        no prepared statements, the next renewal may run on another server connection)."""
        return await psycopg.AsyncConnection.connect(
            self.app.url, application_name="nightcrew heartbeat", **self.app._pool_kwargs()
        )

    async def _close_lease_connection(self) -> None:
        conn, self._lease_conn = self._lease_conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()

    async def _lease_watchdog(self) -> None:
        """Stop every attempt whose lease could not be renewed in time, a safety margin
        before the lease runs out (and another worker may rescue and re-run the job)."""
        margin = self.lease_margin
        period = min(self.settings.heartbeat_seconds, margin) / 2
        while True:
            await asyncio.sleep(period)
            self._stop_expiring(time.monotonic() + margin)

    @property
    def lease_margin(self) -> float:
        """Seconds before its lease runs out that an unrenewed attempt is stopped: a
        quarter of the lease, but never so much that a healthy attempt is stopped between
        two heartbeats."""
        lease, beat = self.settings.lease_seconds, self.settings.heartbeat_seconds
        return min(lease * LEASE_SAFETY_FRACTION, (lease - beat) / 2)

    def _stop_expiring(self, horizon: float) -> None:
        """Stop the attempts whose lease may run out before ``horizon`` (monotonic)."""
        for running in list(self.running.values()):
            if not running.ctx.lease_lost and running.ctx.lease_deadline <= horizon:
                self._stop_lost(running, "lease not renewed in time")
        for job_id, waiting in list(self._waiting.items()):
            if waiting.leased_at + self.settings.lease_seconds <= horizon:
                del self._waiting[job_id]  # never started: its lease just runs out

    async def _rescue_loop(self) -> None:
        while True:
            # Jitter so that many workers don't rescue in lockstep.
            await asyncio.sleep(self.settings.rescue_seconds * random.uniform(0.5, 1.5))
            try:
                await self.rescue()
            except DB_UNAVAILABLE as exc:
                log.warning("rescue failed: %s", exc)

    async def rescue(self) -> int:
        """Rescue expired leases now; return how many jobs were rescued."""
        pool = await self.app.apool()
        async with pool.connection() as conn:
            rescued = await rescue_expired(conn)
        if rescued:
            log.warning("rescued %d jobs whose lease expired", len(rescued))
            self._wake.set()
        return len(rescued)

    async def _listen_loop(self) -> None:
        def listening() -> None:
            self._listening.set()
            self._paused.clear()  # pauses heard of before a reconnect may have ended
            self._wake.set()  # anything enqueued while we were not listening

        await listen_forever(
            self.app.direct_url,  # a pooler would hand our LISTEN session to others
            ("nightcrew_jobs", "nightcrew_cancel", "nightcrew_queues"),
            self._on_notify,
            on_listening=listening,
            on_lost=self._listening.clear,
            check_seconds=self.app.settings.listen_check_seconds,
        )

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == "nightcrew_jobs":
            if payload in self.queues:
                self._wake.set()
        elif channel == "nightcrew_queues":
            self._note_queue_change(payload)
        elif channel == "nightcrew_cancel":
            with contextlib.suppress(ValueError):
                job_id = UUID(payload)
                attempt = self._attempt_here.get(job_id)
                if attempt is not None:
                    self.running[(job_id, attempt)].ctx.request_cancel()

    def _note_queue_change(self, payload: str) -> None:
        """``pause:NAME`` / ``resume:NAME``: jobs held for a limit slot are not started in
        a paused queue (the fetch itself already skips it)."""
        action, _, queue = payload.partition(":")
        if action == "pause":
            self._paused.add(queue)
        elif action == "resume":
            self._paused.discard(queue)

    # ---- shutdown -----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if not self.running:
            return
        tasks = [r.task for r in self.running.values()]
        log.info(
            "stopping: waiting up to %.0fs for %d running jobs",
            self.settings.shutdown_grace_seconds,
            len(tasks),
        )
        _done, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        for task in late:
            task.cancel()
        if late:
            log.warning("releasing %d unfinished jobs back to pending", len(late))
            await asyncio.gather(*late, return_exceptions=True)
