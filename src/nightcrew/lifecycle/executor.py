"""Execute one attempt of a job and decide its outcome.

:class:`Executor` calls the handler (async, or a plain ``def`` in a thread) under the job's
timeout and turns what happened into an :class:`~nightcrew.lifecycle.finish.Outcome`:
completed with its result, retried at a later time, dead-lettered with the error, cancelled,
or released at shutdown -- or nothing at all when the lease is lost. The decisions are plain
functions (:func:`failure_outcome`, :func:`result_outcome`) that need no database.
The worker keeps fetching, heartbeats, rescue and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from nightcrew.context import JobContext, JobInfo, SyncJobContext
from nightcrew.errors import ConfigurationError, JobCancelled, LeaseLost, Retry
from nightcrew.jobs import Backoff, JobType, backoff_delay
from nightcrew.lifecycle.enqueue import MAX_JSON_DEPTH, json_too_deep
from nightcrew.lifecycle.finish import Outcome, error_record

log = logging.getLogger("nightcrew.worker")

DEFAULT_BACKOFF: Backoff = 2.0
"""Backoff of a job whose type is not registered here (its failure is still retried)."""


def retry_delay(backoff: Backoff, attempt: int, exc: BaseException) -> float:
    """Seconds before retrying after failed ``attempt``: a :class:`Retry`'s own delay, else
    the job type's backoff."""
    if isinstance(exc, Retry) and exc.delay is not None:
        return exc.delay
    return backoff_delay(backoff, attempt)


def failure_outcome(
    info: JobInfo, exc: BaseException, *, backoff: Backoff, message: str | None = None
) -> Outcome:
    """A failed attempt: retried later while attempts are left, else dead-lettered."""
    record = error_record(info.attempt, exc, message)
    if info.attempt >= info.max_attempts:
        log.warning("job %s (%s) failed for good: %s", info.id, info.type, exc)
        return Outcome(info.id, info.attempt, "failed", error_json=record)
    delay = retry_delay(backoff, info.attempt, exc)
    return Outcome(info.id, info.attempt, "retrying", error_json=record, delay=delay)


def timeout_outcome(
    info: JobInfo, exc: TimeoutError, *, timeout: float, backoff: Backoff
) -> Outcome:
    """An attempt that ran past the job's timeout: a failure like any other."""
    return failure_outcome(info, exc, backoff=backoff, message=f"timed out after {timeout:g}s")


def result_outcome(info: JobInfo, result: Any, *, backoff: Backoff) -> Outcome:
    """A handler returned ``result``: completed, unless the result cannot be stored."""
    if result is None:  # most handlers return nothing
        return Outcome(info.id, info.attempt, "completed", result_json="null")
    try:
        result_json = json.dumps(result, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        message = f"result is not JSON-serialisable: {exc}"
        return failure_outcome(info, exc, backoff=backoff, message=message)
    if "\\u0000" in result_json:  # jsonb cannot store NUL: fail this job, not the batch
        refused = ValueError("result contains a NUL character (\\u0000)")
        return failure_outcome(info, refused, backoff=backoff, message=str(refused))
    if json_too_deep(result_json):  # it could be stored but never read back
        refused = ValueError(f"result is nested deeper than {MAX_JSON_DEPTH} levels")
        return failure_outcome(info, refused, backoff=backoff, message=str(refused))
    return Outcome(info.id, info.attempt, "completed", result_json=result_json)


def released_outcome(info: JobInfo) -> Outcome:
    """An attempt stopped at shutdown: given back (pending, the attempt not counted)."""
    return Outcome(info.id, info.attempt, "pending")


class Executor:
    """Runs attempts of the job types in ``registry``."""

    def __init__(self, registry: Mapping[str, JobType]) -> None:
        self.registry = registry

    async def execute(self, ctx: JobContext, timeout: float | None) -> Outcome | None:
        """Run one attempt; return its outcome, or ``None`` when nothing may be written
        (the lease is lost). Cancelling the caller stops the attempt: it is released, or
        given up when its lease was lost meanwhile."""
        info = ctx.job
        spec = self.registry.get(info.type)
        backoff = spec.backoff if spec else DEFAULT_BACKOFF
        try:
            if spec is None:
                raise ConfigurationError(f"no handler registered for job type {info.type!r}")
            return await self._invoke(spec, ctx, timeout)
        except asyncio.CancelledError:
            # Lease lost (nothing may be written) or shutdown past its grace (give back).
            return None if ctx.lease_lost else released_outcome(info)
        except LeaseLost:
            ctx.mark_lease_lost()
            return None
        except Exception as exc:  # a handler error, a bad payload, or an unknown type
            return failure_outcome(info, exc, backoff=backoff)

    async def _invoke(self, spec: JobType, ctx: JobContext, timeout: float | None) -> Outcome:
        info = ctx.job
        payload = spec.model.model_validate(info.payload) if spec.model else info.payload
        try:
            result = await self._call_handler(spec, ctx, payload, timeout)
        except TimeoutError as exc:
            if timeout is not None and not ctx.cancelled:
                return timeout_outcome(info, exc, timeout=timeout, backoff=spec.backoff)
            raise
        except JobCancelled:
            return Outcome(info.id, info.attempt, "cancelled")
        return result_outcome(info, result, backoff=spec.backoff)

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


async def _outlast(ctx: JobContext, thread: asyncio.Future[Any]) -> None:
    """Refuse the thread's further writes and wait until it has returned."""
    ctx.interrupt()
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
