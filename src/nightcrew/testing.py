"""Helpers for testing applications built on nightcrew (public API, see docs/public-api.md).

``await drain(app)`` runs a real worker of ``app`` until no job is runnable, so a test can
enqueue, drain, then check the outcome, without sleeping and hoping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nightcrew.app import App
from nightcrew.worker import Worker

__all__ = ["drain", "run_until_idle"]


async def drain(app: App, *, queues: Sequence[str] | None = None, timeout: float = 60.0) -> int:
    """Run a worker of ``app`` until no job is runnable or running; return how many jobs
    it processed.

    ``queues`` defaults to every queue of the app's job types. Jobs scheduled in the future
    are left alone; jobs that a finished job enqueues are run too. Raises ``TimeoutError``
    when jobs are still runnable after ``timeout`` seconds.
    """
    worker = Worker(app, queues=queues)
    return await worker.run_until_idle(timeout=timeout)


def run_until_idle(app: App, *, queues: Sequence[str] | None = None, timeout: float = 60.0) -> int:
    """Synchronous :func:`drain`, for tests without an event loop: runs one of its own and
    closes the App's pools on it before returning (they reopen on next use)."""

    async def drain_and_close() -> int:
        try:
            return await drain(app, queues=queues, timeout=timeout)
        finally:
            await app.aclose()

    return asyncio.run(drain_and_close())
