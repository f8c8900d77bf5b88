"""Enqueue: validate arguments into rows, then write them — one row with a single
statement, many rows with COPY. Nothing is written when any argument is wrong."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any, TypedDict, Unpack
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row, tuple_row
from pydantic import BaseModel, ValidationError

from nightcrew.errors import EnqueueError, PayloadValidationError
from nightcrew.ids import uuid7
from nightcrew.jobs import JobType
from nightcrew.notify.spec import OWNER_JSON, notify_json
from nightcrew.queries import query

logger = logging.getLogger(__name__)

PRIORITY_RANGE = (-1000, 1000)
DEDUPE_SCOPES = ("active", "queued")
PARENT_FAILURE_MODES = ("cancel", "run")
MAX_PARENTS = 100_000
"""Most parents one job may wait for (a fan-out's children included)."""
MAX_ATTEMPTS_LIMIT = 1000
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects a payload or a result may have (readers recurse)."""
_BRACKETS_ONLY = str.maketrans(
    {chr(c): None for c in range(128)} | {"[": "(", "{": "(", "]": ")", "}": ")"}
)
_LIVE_COLUMNS = (
    "id",
    "type",
    "queue",
    "payload",
    "priority",
    "run_at",
    "max_attempts",
    "timeout_seconds",
    "dedupe_key",
    "user_id",
)
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
_local = threading.local()


def encode_json(value: Any) -> str:
    """Compact JSON, refusing NaN/Infinity, like ``_ENCODER.encode`` but ~40 % faster: the
    C encoder is built once per thread instead of once per call (bulk enqueue's hot spot)."""
    encoder = getattr(_local, "encoder", None)
    if encoder is None:
        if c_make_encoder is None:  # pragma: no cover - CPython always has _json
            return encode_json(value)
        # No circular-reference markers: a marker dict shared between calls keeps stale
        # entries after a failed call; a circular payload raises RecursionError instead.
        encoder = c_make_encoder(
            None, _ENCODER.default, encode_basestring_ascii, None, ":", ",", False, False, False
        )
        _local.encoder = encoder
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    return "".join(encoder(value, 0))


_NUL_MESSAGE = "payload for {!r} contains a NUL character (\\u0000), which PostgreSQL cannot store"


class EnqueueOptions(TypedDict, total=False):
    """The options of one enqueue, declared once: ``App.enqueue`` / ``aenqueue`` take them as
    keyword arguments, bulk items as keys, and the HTTP request model and the CLI offer
    subsets of them (tests/core/test_enqueue_options.py keeps them in step)."""

    queue: str | None
    priority: int | None
    delay: float | timedelta | None
    run_at: datetime | None
    dedupe_key: str | None
    dedupe_scope: str | None
    user_id: str | None
    max_attempts: int | None
    timeout: float | None
    notify: Mapping[str, Any] | str | None
    depends_on: Sequence[UUID | str] | None
    on_parent_failure: str | None


ENQUEUE_OPTIONS = frozenset(EnqueueOptions.__annotations__)
"""The names of :class:`EnqueueOptions`."""
ENQUEUE_KEYS = ENQUEUE_OPTIONS | {"type", "payload"}
"""The keys a bulk item may have."""


@dataclass(slots=True)
class NewJob:
    """A validated job, ready to be written."""

    id: UUID
    type: str
    queue: str
    payload_json: str
    priority: int
    run_at: datetime | None
    delay: float
    max_attempts: int
    timeout_seconds: float | None
    dedupe_key: str | None
    user_id: str | None
    notify_json: str | None = None
    dedupe_scope: str = "active"
    depends_on: tuple[UUID, ...] = ()
    on_parent_failure: str | None = None

    def params(self) -> dict[str, Any]:
        """Parameters of the ``insert_job`` query."""
        return {
            "id": self.id,
            "type": self.type,
            "queue": self.queue,
            "payload": self.payload_json,
            "priority": self.priority,
            "run_at": self.run_at,
            "delay": self.delay,
            "max_attempts": self.max_attempts,
            "timeout_seconds": self.timeout_seconds,
            "dedupe_key": self.dedupe_key,
            "user_id": self.user_id,
            "notify": self.notify_json,
        }


def check_option_names(options: Mapping[str, Any]) -> None:
    """A misspelt option is a TypeError, as for any keyword argument (not silently ignored)."""
    unknown = set(options) - ENQUEUE_OPTIONS
    if unknown:
        raise TypeError(
            f"unexpected enqueue option(s) {sorted(unknown)} (known: {sorted(ENQUEUE_OPTIONS)})"
        )


def build_job(
    registry: Mapping[str, JobType],
    type: str,
    payload: Any = None,
    *,
    strict_types: bool = True,
    **options: Unpack[EnqueueOptions],
) -> NewJob:
    """Validate one enqueue request; raise :class:`EnqueueError` naming the problem."""
    if options:
        check_option_names(options)
    if not isinstance(type, str) or not type or "\x00" in type:
        raise EnqueueError(f"job type must be a non-empty string, got {type!r}", field="type")
    spec = registry.get(type)
    if spec is None and strict_types:
        known = ", ".join(sorted(registry)) or "none registered"
        raise EnqueueError(f"unknown job type {type!r} (known: {known})", field="type")
    payload_json = encode_payload(type, payload, spec)
    delay: Any = options.get("delay")
    run_at = options.get("run_at")
    priority: Any = options.get("priority")
    max_attempts = options.get("max_attempts")
    timeout: Any = options.get("timeout")
    queue = options.get("queue")
    dedupe_key = options.get("dedupe_key")
    user_id = options.get("user_id")
    notify = options.get("notify")
    if isinstance(delay, timedelta):
        delay = delay.total_seconds()
    delay = 0.0 if delay is None else delay
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not math.isfinite(delay):
        raise EnqueueError(f"delay must be a number of seconds, got {delay!r}", field="delay")
    if delay < 0:
        raise EnqueueError(f"delay must not be negative, got {delay}", field="delay")
    if run_at is not None:
        if not isinstance(run_at, datetime):
            raise EnqueueError(f"run_at must be a datetime, got {run_at!r}", field="run_at")
        if run_at.tzinfo is None:
            raise EnqueueError(
                "run_at must be timezone-aware (e.g. datetime.now(UTC))", field="run_at"
            )
    priority = spec.priority if priority is None and spec else (priority or 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise EnqueueError(f"priority must be an integer, got {priority!r}", field="priority")
    if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise EnqueueError(
            f"priority must be between {PRIORITY_RANGE[0]} and {PRIORITY_RANGE[1]}, got {priority}",
            field="priority",
        )
    attempts = max_attempts if max_attempts is not None else (spec.max_attempts if spec else 3)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise EnqueueError(
            f"max_attempts must be an integer >= 1, got {attempts!r}", field="max_attempts"
        )
    if attempts > MAX_ATTEMPTS_LIMIT:
        raise EnqueueError(
            f"max_attempts must be at most {MAX_ATTEMPTS_LIMIT}, got {attempts}",
            field="max_attempts",
        )
    timeout = timeout if timeout is not None else (spec.timeout if spec else None)
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise EnqueueError(
            f"timeout must be a positive number of seconds, got {timeout!r}", field="timeout"
        )
    queue = queue or (spec.queue if spec else "default")
    for name, value in (("queue", queue), ("dedupe_key", dedupe_key), ("user_id", user_id)):
        if value is not None and (not isinstance(value, str) or not value or "\x00" in value):
            raise EnqueueError(
                f"{name} must be a non-empty string without NUL, got {value!r}", field=name
            )
    scope = checked_dedupe_scope(options.get("dedupe_scope"), dedupe_key)
    parents = checked_parents(options.get("depends_on"))
    mode = checked_parent_failure(options.get("on_parent_failure"), parents)
    notify_text = (
        notify_json(notify) if notify is not None else (spec.notify_json if spec else None)
    )
    if notify_text == OWNER_JSON and user_id is None and notify is not None:
        raise EnqueueError(
            "notify='owner' needs the job's user_id (whose preferences apply)", field="notify"
        )
    return NewJob(
        id=uuid7(),
        type=type,
        queue=queue,
        payload_json=payload_json,
        priority=priority,
        run_at=run_at,
        delay=float(delay),
        max_attempts=attempts,
        timeout_seconds=float(timeout) if timeout is not None else None,
        dedupe_key=dedupe_key,
        user_id=user_id,
        notify_json=notify_text,
        dedupe_scope=scope,
        depends_on=parents,
        on_parent_failure=mode,
    )


def plain_job(
    registry: Mapping[str, JobType], type: Any, payload: Any, strict_types: bool = True
) -> tuple[Any, ...] | None:
    """The ``insert_job_simple`` parameters of a job enqueued without options, or ``None``
    when :func:`build_job` must take it (which then raises the error it finds, or builds it).

    The same job as ``build_job(registry, type, payload)`` writes, for a fraction of its
    work: the only checks are those of the type, its defaults and the payload (any default
    that is not plainly valid goes to build_job, so errors and their order stay its own)."""
    if type.__class__ is not str or not type or "\x00" in type:
        return None
    spec = registry.get(type)
    if spec is None:
        if strict_types:
            return None
        queue, priority, attempts, timeout, notify = "default", 0, 3, None, None
    else:
        queue, priority, attempts = spec.queue, spec.priority, spec.max_attempts
        timeout, notify = spec.timeout, spec.notify_json
        if not (
            queue.__class__ is str
            and queue
            and "\x00" not in queue
            and priority.__class__ is int
            and PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]
            and attempts.__class__ is int
            and 1 <= attempts <= MAX_ATTEMPTS_LIMIT
        ):
            return None
        if timeout is not None:
            if timeout.__class__ not in (int, float) or not timeout > 0:
                return None
            timeout = float(timeout)
    payload_json = encode_payload(type, payload, spec)
    return (uuid7(), type, queue, payload_json, priority, attempts, timeout, notify)


def checked_parents(depends_on: Any) -> tuple[UUID, ...]:
    """The parent ids, without repeats, in the order given; raise :class:`EnqueueError`
    (``field="depends_on"``) unless ``depends_on`` is a list of job ids."""
    if depends_on is None:
        return ()
    if isinstance(depends_on, str | bytes) or not isinstance(depends_on, Sequence):
        raise EnqueueError(
            f"depends_on must be a list of job ids, got {type(depends_on).__name__}",
            field="depends_on",
        )
    if len(depends_on) > MAX_PARENTS:
        raise EnqueueError(
            f"depends_on lists {len(depends_on)} jobs; at most {MAX_PARENTS}", field="depends_on"
        )
    parents: dict[UUID, None] = {}
    for value in depends_on:
        parents[_parent_id(value)] = None
    return tuple(parents)


def _parent_id(value: Any) -> UUID:
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise EnqueueError(f"depends_on: {value!r} is not a job id", field="depends_on")


def checked_parent_failure(mode: Any, parents: tuple[UUID, ...]) -> str | None:
    """``"cancel"`` (the default) or ``"run"`` for a job with parents, ``None`` without
    (nothing to fail); raise :class:`EnqueueError` for another value."""
    if mode is not None and mode not in PARENT_FAILURE_MODES:
        raise EnqueueError(
            f"on_parent_failure must be 'cancel' or 'run', got {mode!r}",
            field="on_parent_failure",
        )
    if not parents:
        return None
    return "cancel" if mode is None else str(mode)


def checked_dedupe_scope(scope: Any, dedupe_key: str | None) -> str:
    """The dedupe scope to store (``"active"`` when not given); raise :class:`EnqueueError`
    for an unknown scope or a scope without a key."""
    if scope is None:
        return "active"
    if scope not in DEDUPE_SCOPES:
        raise EnqueueError(
            f"dedupe_scope must be 'active' or 'queued', got {scope!r}", field="dedupe_scope"
        )
    if dedupe_key is None:
        raise EnqueueError("dedupe_scope needs a dedupe_key", field="dedupe_scope")
    return str(scope)


def encode_payload(job_type: str, payload: Any, spec: JobType | None) -> str:
    """A payload's JSON text, validated by the type's model if it has one; raise
    :class:`EnqueueError` (or :class:`PayloadValidationError`) naming the problem."""
    if spec is not None and spec.model is not None:
        try:
            if isinstance(payload, spec.model):
                model = payload
            else:
                model = spec.model.model_validate(payload if payload is not None else {})
        except ValidationError as exc:
            raise PayloadValidationError(
                f"payload for {job_type!r} is invalid: {exc}", field="payload"
            ) from None
        return _checked(model.model_dump_json(), job_type)
    if isinstance(payload, BaseModel):
        return _checked(payload.model_dump_json(), job_type)
    try:
        return _checked(encode_json(payload if payload is not None else {}), job_type)
    except (TypeError, ValueError, RecursionError) as exc:
        raise EnqueueError(
            f"payload for {job_type!r} is not JSON-serialisable: {exc}", field="payload"
        ) from None


def _checked(payload_json: str, job_type: str) -> str:
    # PostgreSQL's jsonb cannot store NUL; refuse it here with a clear message.
    if "\\u0000" in payload_json:
        raise EnqueueError(_NUL_MESSAGE.format(job_type), field="payload")
    if json_too_deep(payload_json):
        raise EnqueueError(
            f"payload for {job_type!r} is nested deeper than {MAX_JSON_DEPTH} levels",
            field="payload",
        )
    return payload_json


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON ``text`` nests arrays/objects more than ``limit`` levels deep.

    Stored values are read back by recursive decoders and serialisers (jsonb output,
    pydantic), which give up on deep nesting: such a job could never be shown again.
    Every step is a C-speed string operation: this runs on bulk enqueue's hot path.
    """
    if text.count("[") + text.count("{") <= limit:  # the common case
        return False
    # Drop escaped backslashes and quotes, then every string (odd pieces between quotes),
    # so brackets inside strings do not count; keep the brackets alone, as ( and ).
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    nesting = "".join(unescaped.split('"')[::2]).translate(_BRACKETS_ONLY)
    # Each pass removes the innermost pairs: empty after `limit` passes iff shallow enough.
    for _ in range(limit):
        nesting = nesting.replace("()", "")
        if not nesting:
            return False
    return True


# ---- writing -------------------------------------------------------------------------------


def _insert_query(job: NewJob) -> Any:
    if job.dedupe_key is None:
        return query("insert_job_plain")
    return query("insert_job_queued" if job.dedupe_scope == "queued" else "insert_job")


def commits_alone(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether the next statement on ``conn`` is its own transaction (autocommit, none open)."""
    # pgconn, not conn.info: that builds an object per call (this runs at every enqueue).
    return conn.autocommit and conn.pgconn.transaction_status == _IDLE


_IDLE = TransactionStatus.IDLE


class _InFlight:
    """How many single enqueues of this process are between sending and committing.

    A lone enqueue notifies from its own statement (one round trip). One that may commit
    alongside others notifies after its commit instead: a NOTIFY holds a cluster-wide lock
    across its transaction's WAL flush, so in-statement NOTIFYs would forbid group commit."""

    def __init__(self) -> None:
        # One item per enqueue in flight: list.append and list.pop are atomic, so no lock.
        # Two threads entering together may both see the other (both then notify after
        # their commit, which is always correct); one never misses an enqueue in flight.
        self.tokens: list[None] = []

    def enter(self) -> bool:
        """Count one more; return whether another one was already in flight."""
        tokens = self.tokens
        tokens.append(None)
        return len(tokens) > 1

    def leave(self) -> None:
        self.tokens.pop()


_in_flight = _InFlight()


def _insert_params(job: NewJob, notify_now: bool) -> dict[str, Any]:
    return {**job.params(), "notify_now": notify_now}


_KEPT_CURSOR = "_nightcrew_enqueue_cursor"


def _kept_cursor(conn: Any) -> Any:
    """The cursor single enqueues keep on a pooled connection. psycopg keeps a cursor's
    transformer (the parameters' dumpers, found by type) while it runs the same statement
    object again; a new cursor, as ``conn.execute`` makes, looks every one up again: a
    seventh of a 1-client enqueue's CPU. (A cycle with the connection: freed with it.)"""
    cursor = getattr(conn, _KEPT_CURSOR, None)
    if cursor is None:
        cursor = conn.cursor()
        setattr(conn, _KEPT_CURSOR, cursor)
    return cursor


def insert_one(conn: psycopg.Connection[Any], job: NewJob, *, pooled: bool = False) -> UUID:
    """Write one job (or find the live job with its dedupe key); return the id. A job with
    parents is written and linked to them in one transaction (a savepoint in the caller's).
    ``pooled``: as for :func:`insert_plain`."""
    if job.depends_on:
        return _insert_dependent(conn, job)
    alone = commits_alone(conn)
    after_commit = _in_flight.enter() and alone
    try:
        runner = _kept_cursor(conn) if pooled else conn
        row = runner.execute(_insert_query(job), _insert_params(job, not after_commit)).fetchone()
    finally:
        _in_flight.leave()
    assert row is not None
    if after_commit and row[3]:
        _wake_after_commit_sync(conn, job.queue, row[0])
    return row[0]  # type: ignore[no-any-return]


def _wake_after_commit_sync(conn: psycopg.Connection[Any], queue: str, job_id: UUID) -> None:
    """Wake ``queue``'s workers after a committed enqueue (sync twin of
    :func:`_wake_after_commit`, without its coalescing: a thread has no event loop to share)."""
    try:
        conn.execute(query("notify_queue"), {"queue": queue})
    except psycopg.OperationalError:
        # The job is committed: raising would invite a duplicate. Workers poll.
        logger.warning("job %s committed, but waking the workers failed", job_id)


def _insert_dependent(conn: psycopg.Connection[Any], job: NewJob) -> UUID:
    with refused_parents(), conn.transaction():
        row = conn.execute(_insert_query(job), _insert_params(job, True)).fetchone()
        assert row is not None
        job_id, inserted = row[0], row[1]
        if (link := link_statement(job, job_id, inserted)) is not None:
            conn.execute(*link)
    return job_id  # type: ignore[no-any-return]


async def ainsert_one(
    conn: psycopg.AsyncConnection[Any], job: NewJob, *, pooled: bool = False
) -> UUID:
    """Async twin of :func:`insert_one`."""
    if job.depends_on:
        return await _ainsert_dependent(conn, job)
    alone = commits_alone(conn)
    after_commit = _in_flight.enter() and alone
    try:
        runner = _kept_cursor(conn) if pooled else conn
        cur = await runner.execute(_insert_query(job), _insert_params(job, not after_commit))
        row = await cur.fetchone()
    finally:
        _in_flight.leave()
    assert row is not None
    if after_commit and row[3]:
        await _wake_after_commit(conn, job.queue, row[0])
    return row[0]  # type: ignore[no-any-return]


SIMPLE_PARAMS = (
    "id",
    "type",
    "queue",
    "payload",
    "priority",
    "max_attempts",
    "timeout_seconds",
    "notify",
)
"""The parameters of ``insert_job_simple``, in the order of :func:`plain_job`'s tuple."""
_NAMED = re.compile(r"%\((\w+)\)s")


_SIMPLE: tuple[bytes, bytes] | None = None


def _simple_statements() -> tuple[bytes, bytes]:
    """``insert_job_simple`` with its NOTIFY, and without (the ``RETURNING`` line)."""
    global _SIMPLE
    if _SIMPLE is None:
        # Positional: psycopg reorders named parameters from a dict at every call. Bytes: a
        # query object's text would be encoded again at every call (ASCII: the same bytes
        # in every client encoding).
        text = query("insert_job_simple").as_string()
        quiet, returning, _ = text.rpartition("\nRETURNING pg_notify(")
        if tuple(_NAMED.findall(text)) != SIMPLE_PARAMS or not returning or not text.isascii():
            raise RuntimeError(f"insert_job_simple must take {SIMPLE_PARAMS} and notify last")
        _SIMPLE = (_NAMED.sub("%s", text).encode(), _NAMED.sub("%s", quiet).encode())
    return _SIMPLE


def insert_plain(
    conn: psycopg.Connection[Any], params: tuple[Any, ...], *, pooled: bool = False
) -> UUID:
    """Write a job :func:`plain_job` built; return its id. As :func:`insert_one`: the
    workers are woken from the statement, or after the commit when other enqueues of the
    process are in flight. ``pooled``: ``conn`` is this call's own (a pool's checkout), so
    the cursor kept on it may run the statement."""
    statement, quiet = _SIMPLE or _simple_statements()
    alone = commits_alone(conn)
    after_commit = _in_flight.enter() and alone
    try:
        (_kept_cursor(conn) if pooled else conn).execute(
            quiet if after_commit else statement, params
        )
    finally:
        _in_flight.leave()
    if after_commit:
        _wake_after_commit_sync(conn, params[2], params[0])
    return params[0]  # type: ignore[no-any-return]


async def ainsert_plain(
    conn: psycopg.AsyncConnection[Any], params: tuple[Any, ...], *, pooled: bool = False
) -> UUID:
    """Async twin of :func:`insert_plain`."""
    statement, quiet = _SIMPLE or _simple_statements()
    alone = commits_alone(conn)
    after_commit = _in_flight.enter() and alone
    try:
        await (_kept_cursor(conn) if pooled else conn).execute(
            quiet if after_commit else statement, params
        )
    finally:
        _in_flight.leave()
    if after_commit:
        await _wake_after_commit(conn, params[2], params[0])
    return params[0]  # type: ignore[no-any-return]


async def _ainsert_dependent(conn: psycopg.AsyncConnection[Any], job: NewJob) -> UUID:
    with refused_parents():
        async with conn.transaction():
            cur = await conn.execute(_insert_query(job), _insert_params(job, True))
            row = await cur.fetchone()
            assert row is not None
            job_id, inserted = row[0], row[1]
            if (link := link_statement(job, job_id, inserted)) is not None:
                await conn.execute(*link)
    return job_id  # type: ignore[no-any-return]


def link_statement(job: NewJob, job_id: UUID, inserted: bool) -> tuple[Any, dict[str, Any]] | None:
    """The statement that links a written job to its parents (``link_parents``); ``None``
    for a dedupe hit: the existing job keeps its own parents, and only a request that it
    depend on itself is refused."""
    if not inserted:
        if job_id in job.depends_on:
            raise EnqueueError(
                f"depends_on: job {job_id} cannot depend on itself", field="depends_on"
            )
        return None
    return query("link_parents"), {
        "id": job_id,
        "parents": list(job.depends_on),
        "on_parent_failure": job.on_parent_failure,
    }


@contextmanager
def refused_parents() -> Iterator[None]:
    """Turn the database's refusal of ``depends_on`` (an unknown or invisible parent, the
    job itself) into :class:`EnqueueError` naming ``depends_on``."""
    try:
        yield
    except (psycopg.errors.ForeignKeyViolation, psycopg.errors.InvalidParameterValue) as exc:
        message = (exc.diag.message_primary or str(exc)).strip()
        if not message.startswith(("depends_on", "on_parent_failure")):
            raise
        field = message.split(":", 1)[0].split(" ", 1)[0]
        raise EnqueueError(message, field=field) from None


# Per event loop: queues whose wake-up NOTIFY is scheduled but not sent yet.
_unsent_wakeups: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[str]] = (
    weakref.WeakKeyDictionary()
)


async def _wake_after_commit(conn: psycopg.AsyncConnection[Any], queue: str, job_id: UUID) -> None:
    """Wake ``queue``'s workers after a committed enqueue, coalescing concurrent ones.

    An enqueue that committed while another one's NOTIFY for the same queue is scheduled
    but not sent yet needs none of its own: that NOTIFY goes out after this commit.
    Commits that finish together (a group commit) so share one round trip."""
    unsent = _unsent_wakeups.setdefault(asyncio.get_running_loop(), set())
    if queue in unsent:
        return
    unsent.add(queue)
    try:
        await asyncio.sleep(0)  # let the commits that arrived with this one join it
    finally:
        unsent.discard(queue)
    try:
        await conn.execute(query("notify_queue"), {"queue": queue})
    except psycopg.OperationalError:
        # The job is committed: raising would invite a duplicate. Workers poll.
        logger.warning("job %s committed, but waking the workers failed", job_id)


# The statements ainsert_many_between joined, as bytes in the connection's encoding: composing
# and encoding ~2 kB per call cost more than the lookup. Keyed by the parts' identity (kept
# in the value, so an id cannot be reused while cached); bounded for callers that compose
# SQL per call.
_joined: dict[tuple[Any, ...], tuple[tuple[Any, ...], bytes]] = {}


def _between_statement(conn: psycopg.AsyncConnection[Any], *parts: Any) -> bytes:
    key = (conn.info.encoding, *map(id, parts))
    hit = _joined.get(key)
    if hit is None:
        if len(_joined) >= 64:
            _joined.clear()
        # A newline before each ";": a statement may end in a comment.
        hit = _joined[key] = (parts, sql.SQL("\n;\n").join(parts).as_bytes(conn))
    return hit[1]


def _plain_columns(jobs: Sequence[NewJob]) -> dict[str, list[Any]]:
    """The parameters of ``insert_jobs_plain``: one array per column, one element per job."""
    return {
        "ids": [j.id for j in jobs],
        "types": [j.type for j in jobs],
        "queues": [j.queue for j in jobs],
        "payloads": [j.payload_json for j in jobs],
        "priorities": [j.priority for j in jobs],
        "run_ats": [j.run_at for j in jobs],
        "delays": [j.delay for j in jobs],
        "max_attempts": [j.max_attempts for j in jobs],
        "timeouts": [j.timeout_seconds for j in jobs],
        "user_ids": [j.user_id for j in jobs],
        "notifies": [j.notify_json for j in jobs],
    }


async def ainsert_many_between(
    conn: psycopg.AsyncConnection[Any],
    jobs: Sequence[NewJob],
    before: tuple[Any, dict[str, Any]],
    after: tuple[Any, dict[str, Any]],
) -> list[dict[str, Any]]:
    """Insert ``jobs`` (no dedupe key, no parents) between two statements of the caller's,
    all three in one round trip and one transaction: one simple-protocol query, parameters
    bound by psycopg (client-side), which PostgreSQL runs as one implicit transaction: if
    ``before`` raises (the HTTP key check), nothing after it runs; all commit together at
    its end, so either every job is written or none is. The insert wakes each queue that
    got a job due now once, from its statement, as an enqueue inside a caller's transaction
    does. ``conn`` must be in autocommit with no transaction open. Returns ``after``'s
    rows, as dicts."""
    if any(job.depends_on or job.dedupe_key is not None for job in jobs):
        raise ValueError("ainsert_many_between takes jobs without parents or dedupe key")
    if not commits_alone(conn):
        raise ValueError("ainsert_many_between runs its own transaction: autocommit, none open")
    statement = _between_statement(conn, before[0], query("insert_jobs_plain"), after[0])
    params = {**before[1], **_plain_columns(jobs), **after[1]}
    # Dict rows for the read-back only: a row factory set at the start would also build a
    # row maker (decoding column names) for the two results nobody reads.
    async with psycopg.AsyncClientCursor(conn, row_factory=tuple_row) as cur:
        await cur.execute(statement, params)
        cur.nextset()
        cur.nextset()
        cur.row_factory = dict_row  # type: ignore[assignment]
        return await cur.fetchall()  # type: ignore[return-value]
