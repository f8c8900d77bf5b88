"""The scheduler loop: the leader fires each due tick once; under load, non-critical
schedules are postponed; ticks missed while everything was down follow the schedule's
``missed`` policy.

Every process runs :meth:`Scheduler.run`; only the leader (see :mod:`.leader`) fires. The
fire of a tick and the schedule's new state are written in one transaction, on rows locked
``FOR UPDATE SKIP LOCKED``, and the job insert is idempotent per (schedule, tick): even two
processes that both believe they lead cannot enqueue a tick twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import psycopg
from psycopg.rows import dict_row

from nightcrew.db.clock import database_now
from nightcrew.errors import EnqueueError
from nightcrew.queries import query
from nightcrew.scheduler.leader import Leadership
from nightcrew.scheduler.schedules import Schedule
from nightcrew.scheduler.store import firing_params

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.scheduler")

_MAX_TICKS_PER_PASS = 1000  # per schedule; bounded anyway by the misfire grace
QUIET_RECHECK = timedelta(seconds=5)
"""How often a tick waiting for a quiet queue counts the backlog again."""


@dataclass(frozen=True)
class TickResult:
    """What one pass did to one schedule tick."""

    schedule: str
    action: Literal["fired", "duplicate", "deferred", "skipped", "error"]
    scheduled_for: datetime
    job_id: Any = None
    note: str = ""


class Scheduler:
    """Fires the ticks of an App's schedules while this process leads.

    ``await scheduler.run()`` until :meth:`stop`. Tests drive :meth:`tick` directly with a
    chosen ``now``.
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.settings = app.settings
        self.leadership = Leadership(app.direct_url)  # a session lock: never pooled
        self.leader_since: datetime | None = None
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop the loop and give up leadership."""
        self._stopping.set()

    @property
    def is_leader(self) -> bool:
        """Whether this scheduler currently leads."""
        return self.leadership.held

    async def run(self) -> None:
        """Sync the app's schedules, then lead or stand by until :meth:`stop`."""
        await self._until_done(self._sync)
        poll = self.settings.scheduler_poll_seconds
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    delay = await self._step()
                    failures = 0
                except psycopg.OperationalError as exc:
                    failures += 1
                    delay = min(5.0, 0.1 * 2**failures)
                    log.warning("scheduler: database unavailable (%s); retry in %.1fs", exc, delay)
                    await self.leadership.release()
                except Exception:  # a bug must not silently end scheduling in this process
                    log.exception("scheduler: round failed; retrying")
                    delay = self.settings.scheduler_poll_seconds
                await self._sleep(delay if self.is_leader else poll)
        finally:
            await self.leadership.release()

    async def _step(self) -> float:
        """One round: keep or seek leadership; as leader fire what is due. Returns how long
        to sleep before the next round."""
        was_leader = self.is_leader
        if not await self.leadership.try_acquire():
            if was_leader:
                log.warning("scheduler: lost leadership")
            return self.settings.scheduler_poll_seconds
        if not was_leader:
            log.info("scheduler: became leader (%s)", self.app.direct_url.split("@")[-1])
        await self.tick()
        pool = await self.app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(query("schedule_clock"))
            row = await cur.fetchone()
        assert row is not None
        now, next_due = row
        wait = self.settings.scheduler_poll_seconds
        if next_due is not None:
            wait = min(wait, max(0.0, (next_due - now).total_seconds()))
        return wait

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _until_done(self, step: Any) -> None:
        for attempt in range(1, 1_000_000):
            try:
                await step()
                return
            except psycopg.OperationalError as exc:
                delay = min(5.0, 0.1 * 2**attempt)
                log.warning("scheduler: database unavailable (%s); retry in %.1fs", exc, delay)
                await self._sleep(delay)
                if self._stopping.is_set():
                    return

    async def _sync(self) -> None:
        await asyncio.to_thread(self.app.schedules.sync, mark_missing=True)

    # ---- one pass -----------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> list[TickResult]:
        """Fire every due tick once (leadership is not checked here); return what was done.

        ``now`` defaults to the database clock; tests pass their own.
        """
        pool = await self.app.apool()
        async with pool.connection() as conn, conn.transaction():
            now = await database_now(conn, now)
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query("schedule_due"), {"now": now})
                due = await cur.fetchall()
            results: list[TickResult] = []
            load = _LoadCheck(conn, self.settings, now)
            for row in due:
                results.extend(await self._fire_due(conn, row, now, load))
        for result in results:
            level = logging.WARNING if result.action == "error" else logging.INFO
            log.log(level, "schedule %s: %s %s %s", result.schedule, result.action,
                    result.scheduled_for.isoformat(), result.note)  # fmt: skip
        return results

    async def _fire_due(
        self, conn: psycopg.AsyncConnection[Any], row: dict[str, Any], now: datetime,
        load: _LoadCheck,
    ) -> list[TickResult]:  # fmt: skip
        schedule = Schedule.from_row(row)
        grace = timedelta(seconds=self.settings.scheduler_misfire_grace_seconds)
        state = {"next_run_at": row["next_run_at"], "deferrals": row["deferrals"],
                 "deferred_from": row["deferred_from"]}  # fmt: skip
        results: list[TickResult] = []
        for _ in range(_MAX_TICKS_PER_PASS):
            tick: datetime = state["deferred_from"] or state["next_run_at"]
            if state["next_run_at"] > now:
                break
            run_at, after_fire, note = tick, schedule.next_after(tick), ""
            if state["deferred_from"] is not None:
                run_at, after_fire = now, schedule.next_after(now)
            elif tick < now - grace:  # missed while everything was down
                recent = schedule.next_after(now - grace)
                if recent <= now or schedule.missed == "skip":
                    note = f"missed ticks since {tick.isoformat()} skipped"
                    state["next_run_at"] = recent
                    await self._record(conn, schedule, state, None, None, note)
                    results.append(TickResult(schedule.name, "skipped", tick, note=note))
                    continue
                run_at, after_fire = now, recent
                note = f"missed ticks since {tick.isoformat()}: ran once"
            if schedule.run_by is not None:  # when="quiet"
                waiting = await self._quiet_wait(conn, schedule, tick, now)
                if waiting is not None:
                    state["deferred_from"] = tick
                    state["next_run_at"] = min(now + QUIET_RECHECK, tick + schedule.run_by)
                    await self._record(conn, schedule, state, None, None, waiting)
                    results.append(TickResult(schedule.name, "deferred", tick, note=waiting))
                    break
                if state["deferred_from"] is not None:
                    late = now >= tick + schedule.run_by
                    note = "fired at run_by, the queue still busy" if late else \
                        "fired once the queue was quiet"  # fmt: skip
            if not schedule.critical and state["deferrals"] < schedule.max_deferrals:
                busy = await load.reason()
                if busy:
                    state["deferrals"] += 1
                    state["deferred_from"] = tick
                    state["next_run_at"] = now + schedule.defer_delay
                    note = (f"deferred {state['deferrals']}/{schedule.max_deferrals} "
                            f"until {state['next_run_at'].isoformat()}: {busy}")  # fmt: skip
                    await self._record(conn, schedule, state, None, None, note)
                    results.append(TickResult(schedule.name, "deferred", tick, note=note))
                    break
            if state["deferrals"]:
                capped = state["deferrals"] >= schedule.max_deferrals
                note = f"fired after {state['deferrals']} deferrals" + (
                    " (cap reached)" if capped else "")  # fmt: skip
            results.append(await self._fire(conn, schedule, tick, run_at, note))
            fired = results[-1]
            state.update(next_run_at=after_fire, deferrals=0, deferred_from=None)
            await self._record(conn, schedule, state, tick, fired.job_id,
                               fired.note or fired.action)  # fmt: skip
        return results

    async def _quiet_wait(
        self, conn: psycopg.AsyncConnection[Any], schedule: Schedule, tick: datetime,
        now: datetime,
    ) -> str | None:  # fmt: skip
        """Why a ``when="quiet"`` tick keeps waiting, or None when it fires now: the backlog
        is under ``quiet_backlog``, or ``run_by`` after the tick has come."""
        assert schedule.quiet_backlog is not None and schedule.run_by is not None
        deadline = tick + schedule.run_by
        if now >= deadline:
            return None
        cap = schedule.quiet_backlog
        cur = await conn.execute(query("schedule_backlog"), {"now": now, "cap": cap})
        row = await cur.fetchone()
        assert row is not None
        if row[0] < cap:
            return None
        return (f"waiting for a quiet queue: {cap}+ runnable jobs (under {cap} needed); "
                f"runs by {deadline.isoformat()} regardless")  # fmt: skip

    async def _fire(
        self, conn: psycopg.AsyncConnection[Any], schedule: Schedule, tick: datetime,
        run_at: datetime, note: str,
    ) -> TickResult:  # fmt: skip
        try:
            params = firing_params(self.app.registry, self.app.strict_types, schedule,
                                   scheduled_for=tick, run_at=run_at)  # fmt: skip
        except Exception as exc:  # a bad stored payload or type must not stop other schedules
            detail = str(exc) if isinstance(exc, EnqueueError) else f"{type(exc).__name__}: {exc}"
            return TickResult(schedule.name, "error", tick, note=f"error: {detail}")
        cur = await conn.execute(query("schedule_fire"), params)
        row = await cur.fetchone()
        if row is None:
            return TickResult(schedule.name, "duplicate", tick, note="already fired")
        return TickResult(schedule.name, "fired", tick, job_id=row[0], note=note)

    async def _record(
        self, conn: psycopg.AsyncConnection[Any], schedule: Schedule, state: dict[str, Any],
        fired_for: datetime | None, job_id: Any, outcome: str,
    ) -> None:  # fmt: skip
        await conn.execute(
            query("schedule_record"),
            {"name": schedule.name, "last_run_at": fired_for, "last_job_id": job_id,
             "last_outcome": outcome, **state},
        )  # fmt: skip


class _LoadCheck:
    """Whether the queue is busy, asked at most once per pass."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], settings: Any, now: datetime) -> None:
        self.conn = conn
        self.depth_limit: int = settings.defer_queue_depth
        self.running_limit: int = settings.defer_running_jobs
        self.now = now
        self._reason: str | None = None
        self._checked = False

    async def reason(self) -> str | None:
        """Why the queue counts as busy, or None when it is quiet."""
        if not self._checked:
            self._checked = True
            cur = await self.conn.execute(
                query("schedule_load"),
                {"now": self.now, "depth_cap": self.depth_limit + 1,
                 "running_cap": self.running_limit + 1},
            )  # fmt: skip
            row = await cur.fetchone()
            assert row is not None
            depth, running = row
            if self.depth_limit and depth >= self.depth_limit:
                self._reason = f"queue depth {depth} >= {self.depth_limit}"
            elif self.running_limit and running >= self.running_limit:
                self._reason = f"{running} running jobs >= {self.running_limit}"
        return self._reason
