"""The :class:`App`: job registry, settings, connection pools and the producer API."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, Unpack
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from nightcrew import limits as limit_store
from nightcrew import queues as queue_store
from nightcrew.builtins import install_builtin_jobs
from nightcrew.config import Settings
from nightcrew.db.migrate import migrate
from nightcrew.db.url import resolve_database_url
from nightcrew.errors import ConfigurationError
from nightcrew.jobs import Backoff, FanOut, Job, JobType
from nightcrew.lifecycle import bulk, control
from nightcrew.lifecycle.enqueue import (
    EnqueueOptions,
    ainsert_one,
    ainsert_plain,
    build_job,
    insert_one,
    insert_plain,
    plain_job,
)
from nightcrew.limits import Limit, LimitInfo, check_limits
from nightcrew.progress import median_by_type, row_eta
from nightcrew.queries import query
from nightcrew.queues import QueueInfo
from nightcrew.scheduler.book import ScheduleBook
from nightcrew.scheduler.store import ScheduleInfo

if TYPE_CHECKING:
    from nightcrew.scheduler.loop import Scheduler
    from nightcrew.worker import Worker

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class DashboardPage:
    """A page an application adds to the dashboard (see :meth:`App.add_dashboard_page`)."""

    title: str
    path: str
    router: Any
    templates: str | None = None


class App:
    """A nightcrew application: register job types, enqueue jobs, run workers.

    ``App()`` reads its settings from ``NIGHTCREW_*`` environment variables; keyword
    arguments override them. Without a database URL it uses the embedded PostgreSQL.
    An App is safe to share between threads; async methods may run on any event loop.
    """

    def __init__(
        self, database_url: str | None = None, *, strict_types: bool = True, **settings: Any
    ) -> None:
        if database_url is not None:
            settings["database_url"] = database_url
        self.settings = Settings(**settings)
        self.registry: dict[str, JobType] = {}
        self.strict_types = strict_types
        """When False, enqueue accepts job types this App has not registered (producers)."""
        self._lock = threading.Lock()
        self._url: str | None = None
        self._migrated = False
        self._types_synced = False
        self._pool: ConnectionPool[Any] | None = None
        self.http_routers: list[tuple[Any, str]] = []
        """Routers (FastAPI ``APIRouter``) that apps add to ``nightcrew serve``; see add_router."""
        self.dashboard_pages: list[DashboardPage] = []
        """Pages that apps add to the dashboard's navigation; see add_dashboard_page."""
        self.migration_sets: list[tuple[str, str]] = []
        """Applications' own migration sets (package, schema); see add_migrations."""
        self.applications: list[str] = []
        """The applications installed on this App, in order; see :meth:`application`."""
        self._installing: str | None = None
        self._queue_owners: dict[str, str] = {}
        self._apools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, AsyncConnectionPool[Any]
        ] = weakref.WeakKeyDictionary()
        self.schedules = ScheduleBook(self)
        """The schedules declared with :meth:`schedule`, and their stored state."""
        install_builtin_jobs(self)  # the one place built-in job types are registered

    # ---- registration --------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        backoff: Backoff = 2.0,
        public: bool = True,
        notify: dict[str, Any] | str | None = None,
        notify_template: Any = None,
        priority_range: tuple[int, int] | None = None,
        limits: Sequence[Limit] = (),
    ) -> Callable[[F], F]:
        """Register the decorated function as the handler of job type ``name``.

        ``handler(ctx, payload)``: ``async def`` runs on the worker's loop, plain ``def`` in
        a thread. Annotate ``payload`` with a Pydantic model to validate it at enqueue.
        ``public=False`` keeps the type off the HTTP API. ``notify`` is the default of
        enqueue's ``notify``; ``notify_template`` an ``EmailTemplate`` for its emails.
        ``priority_range=(low, high)`` bounds the priority non-admin HTTP callers may ask.
        ``limits=[nightcrew.Limit("places", rate="10/s"), ...]``: a job starts only when
        every limit allows it (across all workers; see docs/flow-control.md).
        """

        def register(handler: F) -> F:
            if name in self.registry:
                raise ConfigurationError(f"job type {name!r} is already registered")
            self._claim_queue(queue, name)
            self.registry[name] = JobType(
                name=name,
                handler=handler,
                queue=queue,
                priority=priority,
                max_attempts=max_attempts,
                timeout=timeout,
                backoff=backoff,
                public=public,
                notify=notify,
                notify_template=notify_template,
                priority_range=priority_range,
                limits=check_limits(name, limits),
            )
            return handler

        return register

    @contextlib.contextmanager
    def application(self, name: str) -> Iterator[None]:
        """Install the application ``name``: wrap its registrations in this block.

        ``with app.application("estimating"): ...`` is how an application's
        ``install(app)`` adds its job types, schedules, migrations, routes and pages to any
        App. The App refuses to install the same application twice, and refuses a queue that
        another installed application's job types already use (applications never share a
        queue, so each can get its own workers: ``nightcrew worker --queues``).
        """
        if not name:
            raise ConfigurationError("an application needs a name")
        if name in self.applications:
            raise ConfigurationError(f"application {name!r} is already installed on this App")
        self.applications.append(name)
        outer, self._installing = self._installing, name
        try:
            yield
        finally:
            self._installing = outer

    def _claim_queue(self, queue: str, job_type: str) -> None:
        """Refuse ``queue`` for ``job_type`` when another application already uses it."""
        if self._installing is None:
            return  # the host's own job types may share any queue
        owner = self._queue_owners.setdefault(queue, self._installing)
        if owner != self._installing:
            raise ConfigurationError(
                f"job type {job_type!r} of application {self._installing!r} uses queue "
                f"{queue!r}, which belongs to application {owner!r}; give it a queue of its own"
            )

    def add_router(self, router: Any, *, prefix: str = "") -> None:
        """Extension point: serve a FastAPI ``APIRouter`` of the application's own beside
        nightcrew's HTTP API (``nightcrew serve`` / ``nightcrew.http.create_app``).

        Refused when another added router already serves the same prefix, or the same
        method and path.
        """
        full_prefix = _clean_path(prefix + str(getattr(router, "prefix", "")))
        served = {_clean_path(p + str(getattr(r, "prefix", ""))) for r, p in self.http_routers}
        if full_prefix and full_prefix in served:
            raise ConfigurationError(f"route prefix {full_prefix!r} is already served")
        clashes = _routes(router, prefix) & {
            route for added, added_prefix in self.http_routers
            for route in _routes(added, added_prefix)
        }  # fmt: skip
        if clashes:
            method, path = min(clashes)
            raise ConfigurationError(f"route {method} {path} is already served")
        self.http_routers.append((router, prefix))

    def add_dashboard_page(
        self, title: str, path: str, router: Any, *, templates: str | None = None
    ) -> None:
        """Extension point: add ``router`` (a FastAPI ``APIRouter`` of HTML pages) to the
        dashboard, with a navigation entry ``title`` linking to ``path``.

        ``templates`` names a package whose ``templates/`` folder holds the pages' Jinja2
        templates; they may extend nightcrew's ``base.html``. Handlers render with
        ``nightcrew.http.dashboard.render`` inside ``dashboard_session(request)``.
        Refused when another page already has this path.
        """
        if not path.startswith("/"):
            raise ConfigurationError(f"dashboard page path must start with '/', got {path!r}")
        if any(_clean_path(page.path) == _clean_path(path) for page in self.dashboard_pages):
            raise ConfigurationError(f"dashboard page path {path!r} is already taken")
        self.dashboard_pages.append(DashboardPage(title, path, router, templates))

    def add_migrations(self, package: str, schema: str) -> None:
        """Extension point: also apply ``<package>/sql/migrations/NNNN_name.sql``, tracked
        in ``<schema>.migrations``, whenever this App migrates (after nightcrew's own).

        Each migration set owns its schema: a schema already added (or ``nightcrew``) is
        refused.
        """
        if schema == "nightcrew" or any(added == schema for _, added in self.migration_sets):
            raise ConfigurationError(
                f"schema {schema!r} already has migrations on this App; "
                f"package {package!r} needs a schema of its own"
            )
        self.migration_sets.append((package, schema))

    def _migrate_all(self, url: str) -> list[int]:
        applied = migrate(url)
        for package, schema in self.migration_sets:
            applied += migrate(url, package=package, schema=schema)
        return applied

    # ---- connections ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL in use (starts the embedded server when none is configured)."""
        with self._lock:
            if self._url is None:
                self._url = resolve_database_url(self.settings.database_url)
            return self._url

    @property
    def direct_url(self) -> str:
        """Where session-bound work connects: LISTEN, the worker's fetch connection, the
        scheduler's leader lock and migrations (session advisory locks). The ``direct_url``
        setting when set (``database_url`` is then a transaction pooler), else :attr:`url`."""
        return self.settings.direct_url or self.url

    @property
    def behind_pooler(self) -> bool:
        """Whether ``database_url`` is a transaction pooler (a ``direct_url`` is set)."""
        return self.settings.direct_url is not None

    def _pool_kwargs(self) -> dict[str, Any]:
        """Connection options of the pools: autocommit; behind a transaction pooler also no
        server-side prepared statements (the next transaction may run on another server
        connection, where the statement does not exist or has another meaning). A pooler is
        assumed when a ``direct_url`` is set, or ``listen`` is off (its documented use)."""
        kwargs: dict[str, Any] = {"autocommit": True}
        if self.behind_pooler or not self.settings.listen:
            kwargs["prepare_threshold"] = None
        return kwargs

    def migrate(self) -> list[int]:
        """Apply pending migrations now (nightcrew's, then each added set); return the
        versions applied."""
        applied = self._migrate_all(self.direct_url)
        self._migrated = True
        self.sync_job_types()
        return applied

    def _ensure_ready(self) -> str:
        url = self.url
        if self.settings.migrate_on_start and not self._migrated:
            direct = self.direct_url  # migrations hold a session advisory lock
            with self._lock:
                if not self._migrated:
                    self._migrate_all(direct)
                    self._migrated = True
        if not self._types_synced:
            self._sync_job_types_once(url)
        return url

    def _sync_job_types_once(self, url: str) -> None:
        with self._lock:
            if self._types_synced:
                return
            try:
                self._write_job_types(url)
            except psycopg.errors.UndefinedTable:
                # A database not migrated to 0011 yet (migrate_on_start=False): SQL enqueue
                # is not there either; `nightcrew migrate` records the types later.
                return
            self._types_synced = True

    def _write_job_types(self, url: str) -> None:
        types = list(self.registry.values())
        if not types:
            return
        params = {
            "types": [t.name for t in types],
            "queues": [t.queue for t in types],
            "priorities": [t.priority for t in types],
            "max_attempts": [t.max_attempts for t in types],
            # floats all: psycopg refuses a list mixing int and float
            "timeouts": [None if t.timeout is None else float(t.timeout) for t in types],
            "publics": [t.public for t in types],
            "notifies": [t.notify_json for t in types],
        }
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(query("job_types_sync"), params)

    def sync_job_types(self) -> None:
        """Record the registered job types and their defaults (queue, priority,
        max_attempts, timeout, public, notify) in ``nightcrew.job_types``, for
        ``nightcrew.enqueue()`` in SQL. Done when the App first connects and on
        :meth:`migrate`; call it after registering types later."""
        url = self.url
        with self._lock:
            self._write_job_types(url)
            self._types_synced = True

    def pool(self) -> ConnectionPool[Any]:
        """The synchronous connection pool (autocommit connections; see ``direct_url``)."""
        if self._pool is None:
            url = self._ensure_ready()
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        url,
                        min_size=self.settings.pool_min_size,
                        max_size=self.settings.pool_max_size,
                        kwargs=self._pool_kwargs(),
                        open=True,
                        name="nightcrew-sync",
                    )
                    # An App dropped without close() still closes its pool (the pool's own
                    # clean-up at garbage collection warns and waits on its threads).
                    weakref.finalize(self, self._pool.close, timeout=1.0)
        return self._pool

    async def apool(self) -> AsyncConnectionPool[Any]:
        """The async connection pool of the running event loop (autocommit connections)."""
        loop = asyncio.get_running_loop()
        pool = self._apools.get(loop)
        if pool is None:
            url = await asyncio.to_thread(self._ensure_ready)
            pool = self._apools.get(loop)
            if pool is None:
                pool = AsyncConnectionPool(
                    url,
                    min_size=self.settings.pool_min_size,
                    max_size=self.settings.pool_max_size,
                    kwargs=self._pool_kwargs(),
                    open=False,
                    name="nightcrew-async",
                )
                self._apools[loop] = pool
                await pool.open()
        return pool

    def close(self) -> None:
        """Close the synchronous pool (async pools close with :meth:`aclose`)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        """Close the async pool of the running loop, and the synchronous pool."""
        pool = self._apools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.close()
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> App:
        await self.apool()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ---- enqueue -------------------------------------------------------------------------

    def enqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        conn: psycopg.Connection[Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> UUID:
        """Enqueue one job and return its id.

        With ``dedupe_key``, while a job with that key is pending, processing or retrying
        the existing job's id is returned instead. ``dedupe_scope="queued"`` coalesces
        instead: only a job of the key that is waiting to run absorbs this one, so while
        it runs one more (and only one) may queue behind it. With ``conn`` the job is written in
        that connection's current transaction (rolled back: no job). ``notify``
        (``{"email", "webhook", "in_app", "on"}``) sends notifications when the job finishes;
        ``notify="owner"`` notifies the job's ``user_id`` as their preferences say.

        With ``depends_on`` (job ids) the job waits until every parent has ended: it runs
        once they all completed; when one ends failed or cancelled it is cancelled
        (``on_parent_failure="cancel"``) or runs all the same (``"run"``). Unknown parents,
        and the job itself, raise :class:`EnqueueError` with ``field == "depends_on"``.

        The options (``queue``, ``priority``, ``delay``, ``run_at``, ``dedupe_key``,
        ``dedupe_scope``, ``user_id``, ``max_attempts``, ``timeout``, ``notify``,
        ``depends_on``, ``on_parent_failure``) are declared once, in
        :class:`~nightcrew.lifecycle.enqueue.EnqueueOptions`; a misspelt one is a ``TypeError``.
        """
        if not options:
            params = plain_job(self.registry, type, payload, self.strict_types)
            if params is not None:
                if conn is not None:
                    return insert_plain(conn, params)
                with self.pool().connection() as pooled:
                    return insert_plain(pooled, params, pooled=True)
        job = build_job(self.registry, type, payload, strict_types=self.strict_types, **options)
        if conn is not None:
            return insert_one(conn, job)
        with self.pool().connection() as pooled:
            return insert_one(pooled, job, pooled=True)

    async def aenqueue(
        self,
        type: str,
        payload: Any = None,
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> UUID:
        """Async twin of :meth:`enqueue`."""
        if not options:  # the common shape: one statement with the type's defaults
            params = plain_job(self.registry, type, payload, self.strict_types)
            if params is not None:
                if conn is not None:
                    return await ainsert_plain(conn, params)
                return await self._on_pooled(ainsert_plain, params)
        job = build_job(self.registry, type, payload, strict_types=self.strict_types, **options)
        if conn is not None:
            return await ainsert_one(conn, job)
        return await self._on_pooled(ainsert_one, job)

    async def _on_pooled(self, insert: Callable[..., Awaitable[UUID]], arg: Any) -> UUID:
        """``insert(conn, arg, pooled=True)`` on a connection of this event loop's pool.

        getconn/putconn, not pool.connection(): its context managers (the pool's and the
        connection's commit-or-rollback) cost a fifth of a 1-client enqueue's CPU, for
        nothing on an autocommit connection; putconn still rolls back a connection
        returned inside a transaction and replaces a broken one."""
        pool = self._apools.get(asyncio.get_running_loop()) or await self.apool()
        pooled = await pool.getconn()
        try:
            return await insert(pooled, arg, pooled=True)
        finally:
            await pool.putconn(pooled)

    def enqueue_many(
        self, items: Iterable[Mapping[str, Any]], *, conn: psycopg.Connection[Any] | None = None
    ) -> list[UUID]:
        """Enqueue many jobs with COPY, in one transaction; return ids in input order.

        Each item is a dict with ``enqueue``'s argument names (``type``, ``payload``, ...).
        Items sharing a live dedupe key all get the one job's id.
        """
        if isinstance(items, Sequence) and not items:
            return []
        if conn is not None:
            return bulk.insert_many(conn, self.registry, items, strict_types=self.strict_types)
        with self.pool().connection() as pooled:
            return bulk.insert_many(pooled, self.registry, items, strict_types=self.strict_types)

    async def aenqueue_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> list[UUID]:
        """Async twin of :meth:`enqueue_many`."""
        if isinstance(items, Sequence) and not items:
            return []
        strict = self.strict_types
        if conn is not None:
            return await bulk.ainsert_many(conn, self.registry, items, strict_types=strict)
        pool = await self.apool()
        async with pool.connection() as pooled:
            return await bulk.ainsert_many(pooled, self.registry, items, strict_types=strict)

    def fan_out(
        self,
        children: Sequence[Mapping[str, Any]],
        then: Mapping[str, Any],
        *,
        conn: psycopg.Connection[Any] | None = None,
    ) -> FanOut:
        """Enqueue ``children`` (bulk items, one COPY) and ``then``, a job that depends on
        all of them, in one transaction. ``then`` takes ``enqueue``'s argument names and
        may carry ``on_parent_failure``. With ``conn``: in that connection's transaction."""
        if conn is not None:
            return bulk.fan_out(conn, self.registry, children, then, strict_types=self.strict_types)
        with self.pool().connection() as pooled:
            return bulk.fan_out(
                pooled, self.registry, children, then, strict_types=self.strict_types
            )

    async def afan_out(
        self,
        children: Sequence[Mapping[str, Any]],
        then: Mapping[str, Any],
        *,
        conn: psycopg.AsyncConnection[Any] | None = None,
    ) -> FanOut:
        """Async twin of :meth:`fan_out`."""
        strict = self.strict_types
        if conn is not None:
            return await bulk.afan_out(conn, self.registry, children, then, strict_types=strict)
        pool = await self.apool()
        async with pool.connection() as pooled:
            return await bulk.afan_out(pooled, self.registry, children, then, strict_types=strict)

    # ---- reading and steering --------------------------------------------------------------

    def get_job(self, job_id: UUID | str) -> Job | None:
        """The job with this id, or ``None``."""
        uid = control.parse_id(job_id)
        if uid is None:
            return None
        with self.pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            row = cur.execute(query("get_job"), {"id": uid}).fetchone()
            if row is None:
                return None
            row["eta_seconds"] = row_eta(row, datetime.now(UTC), _median_of(cur))
        return Job.from_row(row)

    async def aget_job(self, job_id: UUID | str) -> Job | None:
        """Async twin of :meth:`get_job`."""
        uid = control.parse_id(job_id)
        if uid is None:
            return None
        pool = await self.apool()
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(query("get_job"), {"id": uid})
            row = await cur.fetchone()
            if row is None:
                return None
            typical = None
            if row["status"] == "processing":
                await cur.execute(query("eta_type_buckets"), {"types": [row["type"]]})
                typical = median_by_type(await cur.fetchall()).get(row["type"])
            row["eta_seconds"] = row_eta(row, datetime.now(UTC), lambda _type: typical)
        return Job.from_row(row)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        type: str | None = None,
        limit: int = 50,
        before: UUID | str | None = None,
    ) -> list[Job]:
        """Jobs newest first; pass the last id seen as ``before`` for the next page."""
        params = {
            "status": status,
            "type": type,
            "limit": limit,
            "before": control.parse_id(before) if before else None,
        }
        with self.pool().connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(query("list_jobs"), params).fetchall()
            typical, now = _median_of(cur), datetime.now(UTC)
            for row in rows:
                row["eta_seconds"] = row_eta(row, now, typical)
        return [Job.from_row(row) for row in rows]

    def cancel(self, job_id: UUID | str) -> bool:
        """Cancel a job: a waiting job at once, a running one at its next save.

        Returns False when the job does not exist, has already finished, or its cancel was
        already requested. (``nightcrew.lifecycle.control.cancel`` also says which.)
        """
        with self.pool().connection() as conn:
            return control.cancel(conn, job_id).done

    async def acancel(self, job_id: UUID | str) -> bool:
        """Async twin of :meth:`cancel`."""
        pool = await self.apool()
        async with pool.connection() as conn:
            return (await control.acancel(conn, job_id)).done

    def retry(self, job_id: UUID | str) -> bool:
        """Send a failed or cancelled job back to pending with its attempts reset.

        Returns False when the job is unknown, not failed or cancelled, or while another
        live job holds its dedupe key (retrying it would duplicate that job).
        """
        with self.pool().connection() as conn:
            return control.retry(conn, job_id).done

    async def aretry(self, job_id: UUID | str) -> bool:
        """Async twin of :meth:`retry`."""
        pool = await self.apool()
        async with pool.connection() as conn:
            return (await control.aretry(conn, job_id)).done

    # ---- flow control: limits and queues --------------------------------------------------

    def set_limit(
        self,
        key: str,
        *,
        rate: str | None = None,
        concurrency: int | None = None,
        by: str | None = None,
    ) -> LimitInfo:
        """Override the limits of the concrete key ``key`` at run time, in the database
        (every worker obeys it from its next grant). The values given replace the code's
        (a dimension not given is then unlimited) until :meth:`clear_limit`."""
        with self.pool().connection() as conn:
            return limit_store.set_override(conn, key, rate=rate, concurrency=concurrency, by=by)

    def clear_limit(self, key: str) -> bool:
        """Drop the override of ``key``: the code's limits apply again. False when none."""
        with self.pool().connection() as conn:
            return limit_store.clear_override(conn, key)

    def limits(self) -> list[LimitInfo]:
        """Every limit key seen or overridden, with its limits and current use."""
        with self.pool().connection() as conn:
            return limit_store.list_limits(conn)

    def pause_queue(self, name: str, *, by: str | None = None) -> bool:
        """Pause queue ``name`` cluster-wide (survives restarts): no worker starts its jobs
        until :meth:`resume_queue`; running jobs finish, enqueueing still works. False when
        it was paused already."""
        with self.pool().connection() as conn:
            return queue_store.pause(conn, name, by=by)

    def resume_queue(self, name: str) -> bool:
        """Resume a paused queue; False when it was not paused."""
        with self.pool().connection() as conn:
            return queue_store.resume(conn, name)

    def queues(self) -> list[QueueInfo]:
        """Every known queue: depth, running, paused, jobs per minute."""
        with self.pool().connection() as conn:
            return queue_store.list_queues(conn)

    # ---- schedules -----------------------------------------------------------------------

    def schedule(
        self,
        type: str,
        *,
        name: str | None = None,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str = "UTC",
        payload: Any = None,
        priority: int | None = None,
        queue: str | None = None,
        critical: bool = True,
        missed: str = "run_once",
        defer_delay: timedelta | float = timedelta(hours=2),
        max_deferrals: int = 3,
        when: str = "tick",
        quiet_backlog: int | None = None,
        run_by: timedelta | float | None = None,
    ) -> None:
        """Enqueue a ``type`` job on a schedule: ``cron=`` (5 fields, or 6 with leading
        seconds, or ``@daily``...) in ``timezone``, or ``every=`` an interval.

        ``name`` defaults to the job type. ``missed``: ``"run_once"`` or ``"skip"`` the
        ticks missed while nothing ran. ``critical=False`` postpones a tick by
        ``defer_delay`` while the queue is busy, at most ``max_deferrals`` times in a row.
        ``when="quiet"`` holds each tick until fewer than ``quiet_backlog`` jobs are
        runnable, and fires it ``run_by`` (a timedelta or seconds) after the tick regardless.
        Schedules are stored when a scheduler starts (``nightcrew worker``).
        """
        self.schedules.add(
            type, name=name, cron=cron, every=every, timezone=timezone, payload=payload,
            priority=priority, queue=queue, critical=critical, missed=missed,
            defer_delay=defer_delay, max_deferrals=max_deferrals, when=when,
            quiet_backlog=quiet_backlog, run_by=run_by,
        )  # fmt: skip

    def sync_schedules(self) -> None:
        """Store the declared schedules now (a starting scheduler does this itself)."""
        self.schedules.sync()

    def schedules_list(self) -> list[ScheduleInfo]:
        """Every stored schedule with its state (next/last run, last job and outcome)."""
        return self.schedules.list()

    async def aschedules_list(self) -> list[ScheduleInfo]:
        """Async twin of :meth:`schedules_list`."""
        return await asyncio.to_thread(self.schedules.list)

    def set_schedule_enabled(self, name: str, enabled: bool) -> ScheduleInfo:
        """Enable or disable the stored schedule ``name``."""
        return self.schedules.set_enabled(name, enabled)

    async def aset_schedule_enabled(self, name: str, enabled: bool) -> ScheduleInfo:
        """Async twin of :meth:`set_schedule_enabled`."""
        return await asyncio.to_thread(self.schedules.set_enabled, name, enabled)

    def update_schedule(
        self,
        name: str,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str | None = None,
    ) -> ScheduleInfo:
        """Change when the stored schedule ``name`` fires (kept until its code changes)."""
        return self.schedules.set_timing(name, cron=cron, every=every, timezone=timezone)

    def run_schedule_now(self, name: str) -> UUID:
        """Enqueue the job of schedule ``name`` now; return its id."""
        return self.schedules.run_now(name)

    async def arun_schedule_now(self, name: str) -> UUID:
        """Async twin of :meth:`run_schedule_now`."""
        return await asyncio.to_thread(self.schedules.run_now, name)

    def scheduler(self) -> Scheduler:
        """A :class:`~nightcrew.scheduler.Scheduler` for this app (``await s.run()``)."""
        from nightcrew.scheduler.loop import Scheduler

        return Scheduler(self)

    # ---- workers -------------------------------------------------------------------------

    def worker(
        self, *, queues: Sequence[str] | None = None, concurrency: int | None = None
    ) -> Worker:
        """A :class:`~nightcrew.worker.Worker` for this app (call ``await w.run()``)."""
        from nightcrew.worker import Worker

        return Worker(self, queues=queues, concurrency=concurrency)


def _median_of(cur: psycopg.Cursor[Any]) -> Callable[[str], float | None]:
    """A type's median duration from the stats rollup, read on ``cur`` when first asked."""
    known: dict[str, float | None] = {}

    def median(job_type: str) -> float | None:
        if job_type not in known:
            cur.execute(query("eta_type_buckets"), {"types": [job_type]})
            known.update(median_by_type(cur.fetchall()))
            known.setdefault(job_type, None)
        return known[job_type]

    return median


def _clean_path(path: str) -> str:
    """``path`` without its trailing slashes (``/a/`` and ``/a`` are one route prefix)."""
    return path.rstrip("/")


def _routes(router: Any, prefix: str) -> set[tuple[str, str]]:
    """The (method, path) pairs ``router`` serves under ``prefix``."""
    return {
        (method, _clean_path(prefix + route.path) or "/")
        for route in getattr(router, "routes", [])
        for method in getattr(route, "methods", None) or {"*"}
    }
