"""A dependent job's parents, as its handler reads them: ``ctx.parents``.

Nothing is read before the handler asks: a fan-in of 10,000 starts its handler as soon as
it is leased, and the handler reads what it needs -- the count (known from the fetch), a
summary by status (counted in the database), the parents of some statuses only, all of
them in one query, or page by page. Each call reads the parents' current rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from nightcrew.jobs import JobStatus, ParentJob, ParentSummary
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.context import JobContext

PAGE_SIZE = 1_000
"""Parents read per query when ``ctx.parents`` is iterated."""

_STATUSES = {status.value: status for status in JobStatus}


def _statuses(status: JobStatus | str | Iterable[JobStatus | str] | None) -> list[str] | None:
    """``status=`` of :meth:`Parents.all` as the query's text array (``None``: all)."""
    if status is None:
        return None
    wanted = [status] if isinstance(status, str) else list(status)
    values = []
    for value in wanted:
        if not isinstance(value, str) or value not in _STATUSES:
            raise ValueError(f"status must be one of {sorted(_STATUSES)}, got {value!r}")
        values.append(str(value))
    return values


def _params(
    ctx: JobContext, *, offset: int = 0, limit: int | None = None, statuses: list[str] | None
) -> dict[str, Any]:
    return {"id": ctx.job.id, "offset": offset, "limit": limit, "statuses": statuses}


def _parent(row: tuple[Any, ...]) -> ParentJob:
    return ParentJob(row[0], row[1], _STATUSES[row[2]], row[3], row[4])


def _summary(ctx: JobContext, rows: list[tuple[Any, ...]]) -> ParentSummary:
    counts = {_STATUSES[status]: int(n) for status, n in rows}
    return ParentSummary(total=ctx.job.parent_count, counts=counts)


def _page_offsets(ctx: JobContext, size: int) -> range:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return range(0, ctx.job.parent_count, size)


def _not_iterable(name: str) -> TypeError:
    return TypeError(
        f"{name} is read on demand: use `await {name}.all()` or `async for parent in {name}`"
    )


class Parents:
    """The parents of the running job (``ctx.parents`` in an ``async def`` handler).

    ``len(ctx.parents)`` is known without a query; ``await ctx.parents.all()`` reads them
    (``status=`` to read only some), ``await ctx.parents.summary()`` counts them by status
    in the database, and ``async for parent in ctx.parents`` (or :meth:`pages`) reads them
    :data:`PAGE_SIZE` at a time. Parent id order; a parent pruned meanwhile is read from
    the archive. Empty for a job without dependencies.
    """

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    def __len__(self) -> int:
        return self._ctx.job.parent_count

    def __bool__(self) -> bool:
        return self._ctx.job.parent_count > 0

    def __iter__(self) -> Iterator[ParentJob]:
        raise _not_iterable("ctx.parents")

    def __repr__(self) -> str:
        return f"<Parents of job {self._ctx.job.id}: {len(self)}>"

    async def all(
        self, *, status: JobStatus | str | Iterable[JobStatus | str] | None = None
    ) -> list[ParentJob]:
        """Every parent (one query), or only those whose status is ``status`` (one status
        or several)."""
        statuses = _statuses(status)
        if not self:
            return []
        return await self._read(_params(self._ctx, statuses=statuses))

    async def summary(self) -> ParentSummary:
        """How many parents are in each status, counted in the database (one query, no
        parent row read into the worker)."""
        if not self:
            return ParentSummary(total=0, counts={})
        pool = await self._ctx.app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(query("job_parents_summary"), {"id": self._ctx.job.id})
            rows = await cur.fetchall()
        return _summary(self._ctx, rows)

    async def pages(
        self,
        size: int = PAGE_SIZE,
        *,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
    ) -> AsyncIterator[list[ParentJob]]:
        """The parents ``size`` at a time (one query each); with ``status`` a page holds
        only the matching ones of its ``size`` parents, and may be empty."""
        statuses = _statuses(status)
        for offset in _page_offsets(self._ctx, size):
            yield await self._read(_params(self._ctx, offset=offset, limit=size, statuses=statuses))

    async def __aiter__(self) -> AsyncIterator[ParentJob]:
        async for page in self.pages():
            for parent in page:
                yield parent

    async def _read(self, params: dict[str, Any]) -> list[ParentJob]:
        pool = await self._ctx.app.apool()
        async with pool.connection() as conn:
            cur = await conn.execute(query("job_parents"), params)
            rows = await cur.fetchall()
        return [_parent(row) for row in rows]


class SyncParents:
    """:class:`Parents` for a plain ``def`` handler (``ctx.parents`` of a
    :class:`~nightcrew.SyncJobContext`): the same reads, blocking the handler's thread;
    ``for parent in ctx.parents`` reads them page by page."""

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    def __len__(self) -> int:
        return self._ctx.job.parent_count

    def __bool__(self) -> bool:
        return self._ctx.job.parent_count > 0

    def __repr__(self) -> str:
        return f"<SyncParents of job {self._ctx.job.id}: {len(self)}>"

    def all(
        self, *, status: JobStatus | str | Iterable[JobStatus | str] | None = None
    ) -> list[ParentJob]:
        """See :meth:`Parents.all`."""
        statuses = _statuses(status)
        if not self:
            return []
        return self._read(_params(self._ctx, statuses=statuses))

    def summary(self) -> ParentSummary:
        """See :meth:`Parents.summary`."""
        if not self:
            return ParentSummary(total=0, counts={})
        with self._ctx.app.pool().connection() as conn:
            rows = conn.execute(query("job_parents_summary"), {"id": self._ctx.job.id}).fetchall()
        return _summary(self._ctx, rows)

    def pages(
        self,
        size: int = PAGE_SIZE,
        *,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
    ) -> Iterator[list[ParentJob]]:
        """See :meth:`Parents.pages`."""
        statuses = _statuses(status)
        for offset in _page_offsets(self._ctx, size):
            yield self._read(_params(self._ctx, offset=offset, limit=size, statuses=statuses))

    def __iter__(self) -> Iterator[ParentJob]:
        for page in self.pages():
            yield from page

    def _read(self, params: dict[str, Any]) -> list[ParentJob]:
        with self._ctx.app.pool().connection() as conn:
            rows = conn.execute(query("job_parents"), params).fetchall()
        return [_parent(row) for row in rows]
