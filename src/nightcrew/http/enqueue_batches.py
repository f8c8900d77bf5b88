"""``POST /api/jobs`` under load: the concurrent enqueues of one API key share a transaction.

Each request is validated on its own (422s name its own fields), then handed to the writer
of its key on this event loop. A writer takes a pooled connection and, once it has one,
every job of that key that arrived meanwhile (up to :data:`MAX_JOBS` /
:data:`MAX_PAYLOAD_BYTES`), and writes them in one round trip: the key check, one INSERT of
them all, their read-back; one commit, one NOTIFY per queue. With one request at a time
a batch is that one job, so nothing waits for company: batches grow only while requests
queue for connections anyway, which is when one commit for many saves the most.

What a request sees does not change:
- The key is checked in the batch's own transaction: a key revoked meanwhile gets every
  request of the batch a 401 and writes nothing.
- Only requests of the same key share a transaction, so every statement acts as that key's
  user under row-level security, as a request alone does.
- A batch is written whole or not at all. When the database refuses it for anything but
  the key or the connection (a payload PostgreSQL cannot store, say), nothing was written,
  and each job of the batch is written again alone, so each request gets its own answer.
- When the connection fails, whether the commit happened is unknown: every request of the
  batch gets the error, as a request alone would, and nothing is written twice.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import TYPE_CHECKING, Any

import psycopg

from nightcrew.http.session import REFUSED, forget_key, key_check, unauthorized
from nightcrew.lifecycle.enqueue import NewJob, ainsert_many_between
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

MAX_JOBS = 64
"""Most jobs written by one statement."""
MAX_PAYLOAD_BYTES = 1 << 20
"""A batch stops growing once its payloads reach this size (a lone larger job still goes)."""

_Waiting = list[tuple[NewJob, "asyncio.Future[dict[str, Any]]"]]


class EnqueueBatches:
    """The writers of one App's HTTP enqueues on one event loop, one per API key at a time."""

    def __init__(self, app: App) -> None:
        self.app = app
        self._waiting: dict[str, _Waiting] = {}
        self._writers: set[asyncio.Task[None]] = set()  # strong references while running

    async def write(self, key: str, job: NewJob) -> dict[str, Any]:
        """Write ``job`` for the owner of ``key`` (with whatever else of that key is waiting);
        return its row as the API shows it. Raises the 401 when the database refuses the key."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = []
            self._start_writer(key)
        waiting.append((job, future))
        return await future

    def waiting(self) -> int:
        """How many requests wait for their writer to take them."""
        return sum(map(len, self._waiting.values()))

    def _start_writer(self, key: str) -> None:
        writer = asyncio.get_running_loop().create_task(self._writer(key))
        self._writers.add(writer)
        writer.add_done_callback(self._writers.discard)

    def _take(self, key: str) -> _Waiting:
        """The jobs of ``key`` this writer writes; what does not fit waits for a new writer."""
        waiting = self._waiting.pop(key)
        size, count = 0, 0
        for job, _ in waiting:
            size += len(job.payload_json)
            if count and (count == MAX_JOBS or size > MAX_PAYLOAD_BYTES):
                break
            count += 1
        if count < len(waiting):
            self._waiting[key] = waiting[count:]
            self._start_writer(key)
        return waiting[:count]

    async def _writer(self, key: str) -> None:
        batch: _Waiting = []
        try:
            pool = await self.app.apool()
            timeout = self.app.settings.http_pool_timeout_seconds
            async with pool.connection(timeout=timeout) as conn:
                batch = self._take(key)
                await self._write_batch(conn, key, batch)
        except BaseException as exc:
            if not batch and key in self._waiting:  # failed before taking its jobs
                batch = self._waiting.pop(key)
            _fail(batch, exc)
            if not isinstance(exc, Exception):
                raise

    async def _write_batch(
        self, conn: psycopg.AsyncConnection[Any], key: str, batch: _Waiting
    ) -> None:
        try:
            rows = await self._insert(conn, key, [job for job, _ in batch])
        except REFUSED:
            forget_key(self.app, key)
            _fail(batch, unauthorized())
        except psycopg.OperationalError:
            raise  # the outcome is unknown: never write these jobs a second time
        except psycopg.Error:
            if len(batch) == 1:
                raise
            await self._write_alone(conn, key, batch)  # nothing was written: one by one
        else:
            by_id = {row["id"]: row for row in rows}
            for job, future in batch:
                if not future.done():
                    future.set_result(by_id[job.id])

    async def _write_alone(
        self, conn: psycopg.AsyncConnection[Any], key: str, batch: _Waiting
    ) -> None:
        for item in batch:
            try:
                await self._write_batch(conn, key, [item])
            except psycopg.OperationalError:
                raise  # the writer fails this job and the ones not written yet
            except psycopg.Error as exc:
                _fail([item], exc)

    @staticmethod
    async def _insert(
        conn: psycopg.AsyncConnection[Any], key: str, jobs: list[NewJob]
    ) -> list[dict[str, Any]]:
        read_back = (query("http_get_new_jobs"), {"ids": [job.id for job in jobs]})
        return await ainsert_many_between(conn, jobs, key_check(key), read_back)


def _fail(batch: _Waiting, exc: BaseException) -> None:
    """Give ``exc`` to every request of ``batch`` still waiting."""
    for _, future in batch:
        if not future.done():
            if isinstance(exc, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(exc)


_by_loop: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[App, EnqueueBatches]
] = weakref.WeakKeyDictionary()


def enqueue_batches(app: App) -> EnqueueBatches:
    """The batch writers of ``app`` on the running event loop."""
    per_app = _by_loop.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    batches = per_app.get(app)
    if batches is None:
        batches = per_app[app] = EnqueueBatches(app)
    return batches
