"""Bulk enqueue: validate, encode and stream jobs into one COPY in a single pass.

Rows go to the server in chunks while later items are still being encoded, so on two cores
the database inserts one chunk while Python encodes the next instead of each waiting for the
other. Everything happens in one transaction (a savepoint inside a caller's transaction):
an invalid item raises :class:`EnqueueError` and rolls back what was streamed before it, so
nothing is written.

Items of the common shape ``{"type", "payload"}`` whose type has no payload model take a fast
path: the rest of their row is the type's defaults, formatted once per call, and a chunk made
only of them (with dict payloads) is encoded at once, its payloads in one JSON array. Items
with other options (users, priorities, queues, models...) are validated by :func:`build_job`
and streamed too. Streamed rows leave ``run_at`` to its column default ``now()`` (the
transaction's clock). Items that need that clock (delay, run_at) or a dedupe key are written
after the stream, in the same transaction.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from itertools import islice, repeat
from operator import itemgetter
from typing import Any
from uuid import UUID, SafeUUID

import psycopg
from psycopg import sql
from psycopg.pq import PipelineStatus, TransactionStatus

from nightcrew.errors import EnqueueError
from nightcrew.ids import uuid7_ints, uuid_from_int
from nightcrew.jobs import FanOut, JobType
from nightcrew.lifecycle.enqueue import (
    ENQUEUE_KEYS,
    MAX_JSON_DEPTH,
    NewJob,
    ainsert_one,
    build_job,
    encode_json,
    encode_payload,
    insert_one,
    link_statement,
    refused_parents,
)
from nightcrew.queries import query

# Items encoded per COPY write. The first chunk is small so the server starts inserting at
# once. Later ones are ~13 kB of rows: what the server has not inserted when the stream ends
# is waited for, so smaller chunks shorten that wait (calls of 1,000 through the async API:
# 45.2k -> 48.6k jobs/s over 256 items, medians of 6 interleaved runs; sync 61.0k -> 64.6k,
# medians of 8; one call of 50,000 did not change).
FIRST_CHUNK_ITEMS = 32
CHUNK_ITEMS = 128
_TYPE_AND_PAYLOAD = frozenset({"type", "payload"})
_NULL = "\\N"  # COPY text's NULL
# Between a chunk's payloads in one JSON array (see BulkEncoder._encode_plain).
_MARK = "\x00"
_MARK_SEP = ',"\\u0000",'
_MARK_SEP_ESCAPED = ',"\\\\u0000",'
_DICT_ONLY = {dict}
_get_type = itemgetter("type")
_get_payload = itemgetter("payload")
_new_object = object.__new__
# An id's last two hex digits and the tab after it, by its last byte (see _hex_ids).
_LAST_BYTE_TAB = tuple(f"{byte:02x}\t" for byte in range(256))
_set_uuid_int = UUID.__dict__["int"].__set__
_set_uuid_safety = UUID.__dict__["is_safe"].__set__
_IDLE = TransactionStatus.IDLE
_PIPELINE_OFF = PipelineStatus.OFF
_IN_TRANSACTION = (TransactionStatus.INTRANS, TransactionStatus.INERROR)
_BEGIN, _COMMIT, _ROLLBACK = (sql.SQL(word) for word in ("BEGIN", "COMMIT", "ROLLBACK"))
# The end of a bulk enqueue whose rows all went through the COPY (none needs the clock): the
# wake-up of the queues' workers (delivered at commit, as bulk_begin's) and the commit, in
# one round trip. Two statements in one simple query: the queues are composed in, quoted.
_NOTIFY_AND_COMMIT = sql.SQL(
    "SELECT array_agg(pg_notify('nightcrew_jobs', q)::text) FROM unnest({}::text[]) AS q; COMMIT"
)
_COPY_STREAMED = (
    "COPY nightcrew.jobs (id, payload, type, queue, priority, max_attempts, timeout_seconds,"
    " notify, user_id) FROM STDIN"
)
_COPY_JOBS = (
    "COPY nightcrew.jobs (id, type, queue, payload, priority, run_at, max_attempts,"
    " timeout_seconds, dedupe_key, user_id, notify) FROM STDIN"
)
_COPY_STAGED = (
    "COPY nightcrew_staged_jobs (id, type, queue, payload, priority, run_at, max_attempts,"
    " timeout_seconds, dedupe_key, user_id, notify, ord, dedupe_scope) FROM STDIN"
)


def _copy_text(value: str) -> str:
    """Escape a value for COPY's text format (only backslash and control characters)."""
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _copy_lines(jobs: Sequence[NewJob], now: datetime, with_ord: bool) -> Iterator[str]:
    """COPY text lines; formatting them here is several times faster than per-value adaptation,
    which dominates bulk enqueue otherwise."""
    now_text = now.isoformat()
    for index, job in enumerate(jobs):
        if job.run_at is None and not job.delay:
            run_at = now_text
        else:
            run_at = ((job.run_at or now) + timedelta(seconds=job.delay)).isoformat()
        timeout = _NULL if job.timeout_seconds is None else repr(job.timeout_seconds)
        dedupe = _NULL if job.dedupe_key is None else _copy_text(job.dedupe_key)
        user = _NULL if job.user_id is None else _copy_text(job.user_id)
        notify = _NULL if job.notify_json is None else _copy_text(job.notify_json)
        line = (
            f"{job.id.int:032x}\t{_copy_text(job.type)}\t{_copy_text(job.queue)}\t"
            f"{_copy_text(job.payload_json)}\t{job.priority}\t{run_at}\t{job.max_attempts}\t"
            f"{timeout}\t{dedupe}\t{user}\t{notify}"
        )
        yield f"{line}\t{index}\t{job.dedupe_scope}\n" if with_ord else f"{line}\n"


def _hex_ids(values: range) -> tuple[list[str], list[str]]:
    """The ids ``values`` (consecutive) as COPY text, each in two pieces: its first 30 hex
    digits, shared by a run of up to 256 ids, and its last two with a tab."""
    heads: list[str] = []
    tails: list[str] = []
    value, end = values.start, values.stop
    while value < end:
        run_end = min(end, (value | 0xFF) + 1)
        heads += [f"{value >> 8:030x}"] * (run_end - value)
        tails += _LAST_BYTE_TAB[value & 0xFF : (run_end - 1 & 0xFF) + 1]
        value = run_end
    return heads, tails


def _row_tail(
    job_type: str,
    queue: str,
    priority: int,
    max_attempts: int,
    timeout: float | None,
    notify: str | None,
    user_id: str | None,
) -> str:
    """The COPY text of a streamed row after its payload, newline included."""
    timeout_text = _NULL if timeout is None else repr(float(timeout))
    notify_text = _NULL if notify is None else _copy_text(notify)
    user_text = _NULL if user_id is None else _copy_text(user_id)
    return (
        f"\t{_copy_text(job_type)}\t{_copy_text(queue)}\t{priority}\t{max_attempts}"
        f"\t{timeout_text}\t{notify_text}\t{user_text}\n"
    )


def _defaults_tail(spec: JobType) -> str:
    """A fast row's tail: its type's defaults (computed once per type and call)."""
    return _row_tail(
        spec.name, spec.queue, spec.priority, spec.max_attempts, spec.timeout,
        spec.notify_json, None,
    )  # fmt: skip


class BulkEncoder:
    """Turns bulk items into COPY text chunk by chunk, remembering the ids in input order.

    Rows that need no database clock and no dedupe staging come out of :meth:`chunks`; the
    others (delays, run_at, dedupe keys) are kept in :attr:`other`, with their position, and
    written once the stream is done (:meth:`held_back`).
    """

    def __init__(self, registry: Mapping[str, JobType], *, strict_types: bool) -> None:
        self.registry = registry
        self.strict_types = strict_types
        self.ids: list[UUID | None] = []
        self.other: list[tuple[int, NewJob]] = []
        self.queues: set[str] = set()
        self._tails: dict[str, str | None] = {}

    def _tail(self, job_type: str) -> str | None:
        try:
            return self._tails[job_type]
        except KeyError:
            spec = self.registry.get(job_type)
            tail = None if spec is None or spec.model is not None else _defaults_tail(spec)
            if spec is not None and tail is not None:
                self.queues.add(spec.queue)
            self._tails[job_type] = tail
            return tail

    def chunks(self, items: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
        """COPY text of the streamed rows, one chunk per :data:`CHUNK_ITEMS` items."""
        iterator = iter(items)
        size = FIRST_CHUNK_ITEMS
        while batch := list(islice(iterator, size)):
            size = CHUNK_ITEMS
            if text := self._encode(batch):
                yield text

    def _encode(self, batch: list[Mapping[str, Any]]) -> bytes:
        values = uuid7_ints(len(batch))
        text = self._encode_plain(batch, values)
        return self._encode_each(batch, values) if text is None else text

    def _encode_plain(self, batch: list[Mapping[str, Any]], values: range) -> bytes | None:
        """The whole chunk at once when every item is a dict of exactly ``type`` and a dict
        ``payload``, of types on the fast path (see :meth:`_tail`); else None, and
        :meth:`_encode_each` does it item by item (with the same checks, and the errors).

        The payloads are encoded as one JSON array with a NUL string between them: no
        accepted payload's JSON contains ``\\u0000``, so the separators are found exactly
        and each piece is that payload's own encoding. Any doubt (an encoding error, a NUL,
        more brackets than the quick depth check allows) falls back to item by item.
        """
        count = len(batch)
        # Every check is a C-level pass over the chunk (a Python loop costs twice as much).
        if set(map(type, batch)) != _DICT_ONLY or sum(map(len, batch)) != 2 * count:
            return None
        try:
            types = list(map(_get_type, batch))
            payloads = list(map(_get_payload, batch))
            kinds = set(types)
        except (KeyError, TypeError):  # a key missing; an unhashable type
            return None
        if set(map(type, payloads)) != _DICT_ONLY:
            return None
        known: dict[str, str] = {}
        for kind in kinds:
            tail = self._tail(kind) if kind.__class__ is str else None
            if tail is None:
                return None
            known[kind] = tail
        row_tails = (
            [*known.values()] * count if len(known) == 1 else [*map(known.__getitem__, types)]
        )
        array: list[Any] = [_MARK] * (2 * count - 1)
        array[::2] = payloads
        try:
            text = encode_json(array)
        except (TypeError, ValueError, RecursionError):
            return None
        body = text[1:-1]
        if body.count("\\") == count - 1:  # the separators' backslashes only
            pieces = body.split(_MARK_SEP)
        elif body.count("\\u0000") == count - 1:  # no NUL in a payload; some to escape
            pieces = _copy_text(body).split(_MARK_SEP_ESCAPED)
        else:
            return None
        if len(pieces) != count:
            return None
        # A payload nests at most as deep as it has brackets, pairs of them: a piece no longer
        # than 2 * MAX_JSON_DEPTH + 1 passes. Else, each has its own "{": when the chunk's
        # brackets leave none more than MAX_JSON_DEPTH, each piece passes.
        if (
            max(map(len, pieces)) > 2 * MAX_JSON_DEPTH + 1
            and body.count("[") + body.count("{") - (count - 1) > MAX_JSON_DEPTH
            and (
                max(map(str.count, pieces, repeat("["))) + max(map(str.count, pieces, repeat("{")))
                > MAX_JSON_DEPTH
            )
        ):
            return None
        uuids = list(map(_new_object, repeat(UUID, count)))
        deque(map(_set_uuid_int, uuids, values), 0)
        deque(map(_set_uuid_safety, uuids, repeat(SafeUUID.unknown, count)), 0)
        self.ids.extend(uuids)
        parts = [""] * (4 * count)
        parts[0::4], parts[1::4] = _hex_ids(values)
        parts[2::4] = pieces
        parts[3::4] = row_tails
        return "".join(parts).encode()

    def _encode_each(self, batch: list[Mapping[str, Any]], values: range) -> bytes:
        lines: list[str] = []
        ids = self.ids
        for item, value in zip(batch, values, strict=True):
            job_type = item.get("type") if item.__class__ is dict else None
            tail = (
                self._tail(job_type)
                if isinstance(job_type, str) and item.keys() <= _TYPE_AND_PAYLOAD
                else None
            )
            if tail is None or not isinstance(job_type, str):
                line = self._add_other(item)
                if line is not None:
                    lines.append(line)
                continue
            # No payload model on this path (see _tail): the plain JSON encoding. A dict is
            # encoded here and cleared by two string scans (no NUL, too few brackets to nest
            # too deep); anything else goes through encode_payload's full checks.
            payload = item.get("payload")
            payload_json = None
            if payload.__class__ is dict:
                try:
                    payload_json = encode_json(payload)
                except (TypeError, ValueError, RecursionError):
                    pass
                else:
                    if (
                        "\\u0000" in payload_json
                        or payload_json.count("[") + payload_json.count("{") > MAX_JSON_DEPTH
                    ):
                        payload_json = None
            if payload_json is None:
                try:
                    payload_json = encode_payload(job_type, payload, None)
                except EnqueueError as exc:
                    raise type(exc)(f"item {len(ids)}: {exc}", field=exc.field) from None
            if "\\" in payload_json:
                payload_json = _copy_text(payload_json)
            ids.append(uuid_from_int(value))
            lines.append(f"{value:032x}\t{payload_json}{tail}")
        return "".join(lines).encode()

    def _add_other(self, item: Mapping[str, Any]) -> str | None:
        """Validate an item off the fast path. Return its streamed row when it needs neither
        the database clock (delay, run_at) nor dedupe staging; else keep it for later."""
        index = len(self.ids)
        if not isinstance(item, Mapping):
            raise EnqueueError(f"item {index}: expected a dict, got {type(item).__name__}")
        unknown = set(item) - ENQUEUE_KEYS
        if unknown:
            raise EnqueueError(f"item {index}: unknown keys {sorted(unknown)}")
        if "type" not in item:
            raise EnqueueError(f"item {index}: missing 'type'")
        args = dict(item)
        job_type = args.pop("type")
        payload = args.pop("payload", None)
        try:
            job = build_job(
                self.registry, job_type, payload, strict_types=self.strict_types, **args
            )
        except EnqueueError as exc:
            raise type(exc)(f"item {index}: {exc}", field=exc.field) from None
        self.queues.add(job.queue)
        if job.dedupe_key is None and job.run_at is None and not job.delay and not job.depends_on:
            self.ids.append(job.id)
            tail = _row_tail(
                job.type, job.queue, job.priority, job.max_attempts, job.timeout_seconds,
                job.notify_json, job.user_id,
            )  # fmt: skip
            return f"{job.id.int:032x}\t{_copy_text(job.payload_json)}{tail}"
        self.ids.append(None)
        self.other.append((index, job))
        return None

    @property
    def coalescing(self) -> bool:
        """True when some held-back item has a ``"queued"``-scope dedupe key."""
        return any(job.dedupe_scope == "queued" for _, job in self.other)

    def held_back(self, now: datetime) -> tuple[bytes, bytes]:
        """COPY text of the items written after the stream, now that the transaction's
        clock is known: (plain rows for jobs, dedupe-keyed rows for the staging table)."""
        plain = [job for _, job in self.other if job.dedupe_key is None]
        keyed = [job for _, job in self.other if job.dedupe_key is not None]
        return (
            "".join(_copy_lines(plain, now, with_ord=False)).encode(),
            "".join(_copy_lines(keyed, now, with_ord=True)).encode(),
        )

    def links(self, ids: Sequence[UUID]) -> list[tuple[Any, dict[str, Any]]]:
        """The ``link_parents`` statements of the held-back items with parents, once
        :meth:`result` gave their ids (a dedupe hit links nothing)."""
        statements = []
        for index, job in self.other:
            if not job.depends_on:
                continue
            try:
                link = link_statement(job, ids[index], inserted=ids[index] == job.id)
            except EnqueueError as exc:
                raise EnqueueError(f"item {index}: {exc}", field=exc.field) from None
            if link is not None:
                statements.append(link)
        return statements

    def result(self, returned: Iterable[tuple[UUID, str, str]]) -> list[UUID]:
        """Ids in input order; items with a dedupe key get the live job's id."""
        ids = self.ids
        by_key = {(key, scope): job_id for job_id, key, scope in returned}
        for index, job in self.other:
            ids[index] = by_key[job.dedupe_key, job.dedupe_scope] if job.dedupe_key else job.id
        return ids  # type: ignore[return-value]  # every None was filled above


def insert_many(
    conn: psycopg.Connection[Any],
    registry: Mapping[str, JobType],
    items: Iterable[Mapping[str, Any]],
    *,
    strict_types: bool,
) -> list[UUID]:
    """Validate and write many jobs in one transaction; ids in input order."""
    encoder = BulkEncoder(registry, strict_types=strict_types)
    chunks = encoder.chunks(items)
    with refused_parents():
        if _own_transaction(conn):
            return _insert_own(conn, encoder, chunks)
        with conn.transaction():
            _stream(conn, encoder, chunks)
            return _held_back(conn, encoder) if encoder.ids else []


def _own_transaction(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether the bulk transaction may be begun and ended by hand on ``conn``: an idle
    autocommit connection (the pool's) outside pipeline mode."""
    return (
        conn.autocommit
        and conn.info.transaction_status == _IDLE
        and conn.pgconn.pipeline_status == _PIPELINE_OFF
    )


def _insert_own(
    conn: psycopg.Connection[Any], encoder: BulkEncoder, chunks: Iterator[bytes]
) -> list[UUID]:
    """The bulk transaction begun and ended here: when every row went through the stream
    (nothing needs the clock), the workers' wake-up and the commit take one round trip
    (:data:`_NOTIFY_AND_COMMIT`) instead of two."""
    conn.execute(_BEGIN, prepare=False)
    try:
        _stream(conn, encoder, chunks)
        if encoder.other or not encoder.ids:
            ids = _held_back(conn, encoder) if encoder.ids else []
            conn.execute(_COMMIT, prepare=False)
            return ids
        queues = sql.Literal(sorted(encoder.queues))
        conn.execute(_NOTIFY_AND_COMMIT.format(queues), prepare=False)
        return encoder.result(())
    except BaseException:
        if conn.info.transaction_status in _IN_TRANSACTION:
            with contextlib.suppress(psycopg.Error):
                conn.execute(_ROLLBACK, prepare=False)
        raise


def _stream(conn: psycopg.Connection[Any], encoder: BulkEncoder, chunks: Iterator[bytes]) -> None:
    # The COPY opens with the first chunk: items that are all held back need none.
    if (first := next(chunks, None)) is not None:
        with conn.cursor().copy(_COPY_STREAMED) as copy:
            copy.write(first)
            for chunk in chunks:
                copy.write(chunk)


def _held_back(conn: psycopg.Connection[Any], encoder: BulkEncoder) -> list[UUID]:
    """After the stream: the clock for run_at of the held-back rows (the streamed rows'
    default is the same now()) and the workers' wake-up, delivered at commit; the held-back
    rows; the links."""
    row = conn.execute(query("bulk_begin"), {"queues": sorted(encoder.queues)}).fetchone()
    assert row is not None
    plain, keyed = encoder.held_back(row[0])
    returned: list[tuple[UUID, str, str]] = []
    if plain:
        with conn.cursor().copy(_COPY_JOBS) as copy:
            copy.write(plain)
    if keyed:
        conn.execute(query("stage_jobs"))
        with conn.cursor().copy(_COPY_STAGED) as copy:
            copy.write(keyed)
        returned = conn.execute(query("insert_staged_jobs")).fetchall()
        if encoder.coalescing:
            returned += conn.execute(query("insert_staged_jobs_queued")).fetchall()
        conn.execute("DELETE FROM nightcrew_staged_jobs")
    ids = encoder.result(returned)
    if links := encoder.links(ids):
        conn.cursor().executemany(links[0][0], [params for _, params in links])
    return ids


async def ainsert_many(
    conn: psycopg.AsyncConnection[Any],
    registry: Mapping[str, JobType],
    items: Iterable[Mapping[str, Any]],
    *,
    strict_types: bool,
) -> list[UUID]:
    """Async twin of :func:`insert_many`."""
    encoder = BulkEncoder(registry, strict_types=strict_types)
    chunks = encoder.chunks(items)
    with refused_parents():
        if _own_transaction(conn):
            return await _ainsert_own(conn, encoder, chunks)
        return await _ainsert_encoded(conn, encoder, chunks)


async def _ainsert_encoded(
    conn: psycopg.AsyncConnection[Any], encoder: BulkEncoder, chunks: Iterator[bytes]
) -> list[UUID]:
    async with conn.transaction():
        await _astream(conn, encoder, chunks)
        return await _aheld_back(conn, encoder) if encoder.ids else []


async def _ainsert_own(
    conn: psycopg.AsyncConnection[Any], encoder: BulkEncoder, chunks: Iterator[bytes]
) -> list[UUID]:
    """Async twin of :func:`_insert_own`."""
    await conn.execute(_BEGIN, prepare=False)
    try:
        await _astream(conn, encoder, chunks)
        if encoder.other or not encoder.ids:
            ids = await _aheld_back(conn, encoder) if encoder.ids else []
            await conn.execute(_COMMIT, prepare=False)
            return ids
        queues = sql.Literal(sorted(encoder.queues))
        await conn.execute(_NOTIFY_AND_COMMIT.format(queues), prepare=False)
        return encoder.result(())
    except BaseException:
        if conn.info.transaction_status in _IN_TRANSACTION:
            with contextlib.suppress(psycopg.Error):
                await conn.execute(_ROLLBACK, prepare=False)
        raise


async def _astream(
    conn: psycopg.AsyncConnection[Any], encoder: BulkEncoder, chunks: Iterator[bytes]
) -> None:
    # The COPY opens with the first chunk: items that are all held back need none.
    if (first := next(chunks, None)) is not None:
        async with conn.cursor().copy(_COPY_STREAMED) as acopy:
            await acopy.write(first)
            for chunk in chunks:
                await acopy.write(chunk)


async def _aheld_back(conn: psycopg.AsyncConnection[Any], encoder: BulkEncoder) -> list[UUID]:
    """Async twin of :func:`_held_back`."""
    cur = await conn.execute(query("bulk_begin"), {"queues": sorted(encoder.queues)})
    row = await cur.fetchone()
    assert row is not None
    plain, keyed = encoder.held_back(row[0])
    returned: list[tuple[UUID, str, str]] = []
    if plain:
        async with conn.cursor().copy(_COPY_JOBS) as acopy:
            await acopy.write(plain)
    if keyed:
        await conn.execute(query("stage_jobs"))
        async with conn.cursor().copy(_COPY_STAGED) as acopy:
            await acopy.write(keyed)
        cur = await conn.execute(query("insert_staged_jobs"))
        returned = await cur.fetchall()
        if encoder.coalescing:
            cur = await conn.execute(query("insert_staged_jobs_queued"))
            returned += await cur.fetchall()
        await conn.execute("DELETE FROM nightcrew_staged_jobs")
    ids = encoder.result(returned)
    if links := encoder.links(ids):
        await conn.cursor().executemany(links[0][0], [params for _, params in links])
    return ids


# ---- fan-out -------------------------------------------------------------------------------


def build_then(
    registry: Mapping[str, JobType],
    then: Mapping[str, Any],
    children: Sequence[UUID],
    *,
    strict_types: bool,
) -> NewJob:
    """Validate a fan-out's dependent (``enqueue``'s argument names, ``on_parent_failure``
    included) and make it depend on ``children``."""
    if not isinstance(then, Mapping):
        raise EnqueueError(f"then: expected a dict, got {type(then).__name__}", field="then")
    unknown = set(then) - (ENQUEUE_KEYS - {"depends_on"})
    if unknown:
        raise EnqueueError(f"then: unknown keys {sorted(unknown)}", field="then")
    if "type" not in then:
        raise EnqueueError("then: missing 'type'", field="then")
    args = dict(then)
    job_type = args.pop("type")
    payload = args.pop("payload", None)
    try:
        return build_job(
            registry, job_type, payload, strict_types=strict_types, depends_on=children, **args
        )
    except EnqueueError as exc:
        raise type(exc)(f"then: {exc}", field=exc.field or "then") from None


def fan_out(
    conn: psycopg.Connection[Any],
    registry: Mapping[str, JobType],
    children: Iterable[Mapping[str, Any]],
    then: Mapping[str, Any],
    *,
    strict_types: bool,
) -> FanOut:
    """Write the children (one COPY) and their dependent in one transaction."""
    with conn.transaction():
        ids = insert_many(conn, registry, children, strict_types=strict_types)
        job = build_then(registry, then, ids, strict_types=strict_types)
        return FanOut(children=ids, then=insert_one(conn, job))


async def afan_out(
    conn: psycopg.AsyncConnection[Any],
    registry: Mapping[str, JobType],
    children: Iterable[Mapping[str, Any]],
    then: Mapping[str, Any],
    *,
    strict_types: bool,
) -> FanOut:
    """Async twin of :func:`fan_out`."""
    async with conn.transaction():
        ids = await ainsert_many(conn, registry, children, strict_types=strict_types)
        job = build_then(registry, then, ids, strict_types=strict_types)
        return FanOut(children=ids, then=await ainsert_one(conn, job))
