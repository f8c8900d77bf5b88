"""The worker loop: fetch -> run -> finish, with heartbeats, rescue and graceful shutdown.

One asyncio task per running job; the loop keeps ``concurrency`` jobs running, fetching a
batch whenever slots are free. It wakes on LISTEN/NOTIFY and polls as a fallback, so it
also runs where LISTEN is unavailable (PgBouncer in transaction mode without a
``direct_url``: ``listen=False``). With a ``direct_url`` the fetch and LISTEN connections
bypass the pooler and everything else goes through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

import psycopg

from nightcrew.context import JobContext, JobInfo, SyncJobContext
from nightcrew.db.listen import listen_forever
from nightcrew.errors import ConfigurationError, JobCancelled, LeaseLost, Retry
from nightcrew.ids import uuid7
from nightcrew.jobs import JobType, backoff_delay
from nightcrew.lifecycle.fetch import configure_fetch_session, fetch_jobs
from nightcrew.lifecycle.finish import Completer, Outcome, error_record
from nightcrew.lifecycle.heartbeat import renew_leases
from nightcrew.lifecycle.rescue import rescue_expired
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.worker")

# Errors that mean "the database is unreachable right now": retry, don't crash the worker.
DB_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass
class _Running:
    ctx: JobContext
    task: asyncio.Task[None]


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
        self.running: dict[UUID, _Running] = {}
        self.processed = 0
        self._wake = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._completer: Completer | None = None
        self._listening = asyncio.Event()
        self._fetch_conn: psycopg.AsyncConnection[Any] | None = None

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
                " AND run_at <= now() + interval '1 second')",
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
            for row in rows:
                self._start(row)
            if len(rows) < limit:
                # asyncio.timeout, not wait_for: no extra task between a NOTIFY and the fetch.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.poll_seconds):
                        await self._wake.wait()

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

    def _start(self, row: tuple[Any, ...]) -> None:
        (
            job_id,
            job_type,
            queue,
            payload,
            priority,
            attempt,
            max_attempts,
            timeout,
            checkpoint,
            user_id,
            _run_at,
            created_at,
        ) = row
        info = JobInfo(
            id=job_id,
            type=job_type,
            queue=queue,
            attempt=attempt,
            max_attempts=max_attempts,
            payload=payload,
            priority=priority,
            user_id=user_id,
            created_at=created_at,
        )
        ctx = JobContext(self.app, info, checkpoint, self.id)
        task = asyncio.create_task(self._run_job(ctx, timeout))
        self.running[job_id] = _Running(ctx, task)

    # ---- running one job ----------------------------------------------------------------

    async def _run_job(self, ctx: JobContext, timeout: float | None) -> None:
        info = ctx.job
        spec = self.app.registry.get(info.type)
        outcome: Outcome | None = None
        try:
            if spec is None:
                raise ConfigurationError(f"no handler registered for job type {info.type!r}")
            outcome = await self._invoke(spec, ctx, timeout)
        except asyncio.CancelledError:
            # Lease lost (nothing may be written) or shutdown past its grace (give back).
            if not ctx.lease_lost:
                outcome = Outcome(info.id, info.attempt, "pending")
        except Exception as exc:  # a handler error, or an unknown type
            outcome = self._failure(spec, info, exc)
        finally:
            self.running.pop(info.id, None)
            self._slot_free.set()
            self.processed += 1
            if outcome is not None and self._completer is not None:
                self._completer.add(outcome)

    async def _invoke(self, spec: JobType, ctx: JobContext, timeout: float | None) -> Outcome:
        info = ctx.job
        payload = spec.model.model_validate(info.payload) if spec.model else info.payload
        try:
            result = await self._call_handler(spec, ctx, payload, timeout)
        except TimeoutError as exc:
            if timeout is not None and not ctx.cancelled:
                return self._failure(spec, info, exc, f"timed out after {timeout:g}s")
            raise
        except JobCancelled:
            return Outcome(info.id, info.attempt, "cancelled")
        except LeaseLost:
            ctx._lost = True
            raise asyncio.CancelledError from None
        try:
            result_json = (
                "null"  # most handlers return nothing
                if result is None
                else json.dumps(result, allow_nan=False, default=_json_default)
            )
        except (TypeError, ValueError) as exc:
            return self._failure(spec, info, exc, f"result is not JSON-serialisable: {exc}")
        if "\\u0000" in result_json:  # jsonb cannot store NUL: fail this job, not the batch
            refused = ValueError("result contains a NUL character (\\u0000)")
            return self._failure(spec, info, refused, str(refused))
        return Outcome(info.id, info.attempt, "completed", result_json=result_json)

    async def _call_handler(
        self, spec: JobType, ctx: JobContext, payload: Any, timeout: float | None
    ) -> Any:
        if spec.is_async:
            if timeout is None:
                return await spec.handler(ctx, payload)
            async with asyncio.timeout(timeout):
                return await spec.handler(ctx, payload)
        # A thread cannot be interrupted. On timeout, shutdown or a lost lease, keep the job
        # (and, through heartbeats, its lease) until the thread has really returned, so no
        # retry can run beside it; meanwhile its ctx.save / ctx.transaction calls are refused.
        sync_ctx = SyncJobContext(ctx, asyncio.get_running_loop())
        thread = asyncio.ensure_future(asyncio.to_thread(spec.handler, sync_ctx, payload))
        try:
            return await asyncio.wait_for(asyncio.shield(thread), timeout)
        except asyncio.CancelledError:
            await _outlast(ctx, thread)
            if not ctx.lease_lost and thread.exception() is None:
                return thread.result()  # it finished after all: record it, don't release it
            raise
        except TimeoutError:
            await _outlast(ctx, thread)
            raise

    def _failure(
        self, spec: JobType | None, info: JobInfo, exc: BaseException, message: str | None = None
    ) -> Outcome:
        record = error_record(info.attempt, exc, message)
        if info.attempt >= info.max_attempts:
            log.warning("job %s (%s) failed for good: %s", info.id, info.type, exc)
            return Outcome(info.id, info.attempt, "failed", error_json=record)
        if isinstance(exc, Retry) and exc.delay is not None:
            delay = exc.delay
        else:
            delay = backoff_delay(spec.backoff if spec else 2.0, info.attempt)
        return Outcome(info.id, info.attempt, "retrying", error_json=record, delay=delay)

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
                await self.heartbeat()
            except DB_UNAVAILABLE as exc:
                log.warning("heartbeat failed: %s", exc)

    async def heartbeat(self) -> None:
        """Renew the leases of running jobs; stop the ones this worker lost."""
        held = [(job_id, r.ctx.job.attempt) for job_id, r in self.running.items()]
        if self._completer is not None:
            held += self._completer.held  # finished, but not yet written: still ours
        pool = await self.app.apool()
        async with pool.connection() as conn:
            await conn.execute(query("touch_worker"), {"id": self.id})
            if not held:
                return
            alive = await renew_leases(
                conn, worker_id=self.id, held=held, lease_seconds=self.settings.lease_seconds
            )
        for job_id, _attempt in held:
            running = self.running.get(job_id)
            if running is None:
                continue
            if job_id not in alive:
                log.warning("job %s: lease lost; stopping its handler", job_id)
                running.ctx._lost = True
                running.task.cancel()
            elif alive[job_id]:
                running.ctx._cancelled = True

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
            self._wake.set()  # anything enqueued while we were not listening

        await listen_forever(
            self.app.direct_url,  # a pooler would hand our LISTEN session to others
            ("nightcrew_jobs", "nightcrew_cancel"),
            self._on_notify,
            on_listening=listening,
            on_lost=self._listening.clear,
        )

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == "nightcrew_jobs":
            if payload in self.queues:
                self._wake.set()
        elif channel == "nightcrew_cancel":
            with contextlib.suppress(ValueError):
                running = self.running.get(UUID(payload))
                if running is not None:
                    running.ctx._cancelled = True

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


async def _outlast(ctx: JobContext, thread: asyncio.Future[Any]) -> None:
    """Refuse the thread's further writes and wait until it has returned."""
    ctx._interrupted = True
    while not thread.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait([thread])
    thread.exception()  # retrieve it so asyncio does not log it; the outcome is decided above


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
