"""Yjs collaboration state with pycrdt: appended binary updates, the merged state, and
snapshots that fold pending updates into one compressed update.

A snapshot is written, and the updates it merged deleted, in one transaction: a worker
killed half-way leaves either both (done) or neither (the retry does it), so no update is
lost or merged twice. Updates appended meanwhile are not in the merged set and stay.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

import psycopg
import pycrdt

from workspace.errors import Invalid, NotFound
from workspace.sql import query

Conn = psycopg.AsyncConnection[Any]
KEEP_SNAPSHOTS = 5
MAX_UPDATE_BYTES = 10_000_000


def check_update(update: bytes) -> None:
    """:class:`Invalid` unless ``update`` is a Yjs update pycrdt can apply."""
    if not update:
        raise Invalid("empty body: send a Yjs update (application/octet-stream)")
    if len(update) > MAX_UPDATE_BYTES:
        raise Invalid(f"a Yjs update is at most {MAX_UPDATE_BYTES} bytes")
    try:
        pycrdt.Doc().apply_update(update)
    except Exception:  # pycrdt raises plain ValueError/RuntimeError subclasses from Rust
        raise Invalid("the body is not a valid Yjs update") from None


async def append(conn: Conn, doc_id: UUID, update: bytes) -> int:
    """Append an update to a document the caller sees; the update's id."""
    check_update(update)
    cur = await conn.execute(query("yjs_append"), {"id": doc_id, "update": update})
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"unknown document {doc_id}")
    return int(row[0])


def merge(parts: list[bytes]) -> bytes:
    """One Yjs update equivalent to applying all of ``parts``."""
    if not parts:
        return bytes(pycrdt.Doc().get_update())
    return bytes(pycrdt.merge_updates(*parts))


async def state(conn: Conn, doc_id: UUID) -> bytes:
    """The document's whole state: newest snapshot merged with the pending updates."""
    cur = await conn.execute(query("yjs_document_visible"), {"id": doc_id})
    if await cur.fetchone() is None:
        raise NotFound(f"unknown document {doc_id}")
    cur = await conn.execute(query("yjs_parts"), {"id": doc_id})
    parts = [
        zlib.decompress(data) if kind == 0 else bytes(data)
        for kind, _, data in await cur.fetchall()
    ]
    return merge(parts)


async def pending_documents(conn: Conn) -> list[UUID]:
    """Documents with updates not yet in a snapshot."""
    cur = await conn.execute(query("yjs_pending_documents"))
    return [UUID(str(row[0])) for row in await cur.fetchall()]


async def snapshot(
    conn: Conn, doc_id: UUID, before_commit: Callable[[], Awaitable[None]] | None = None
) -> dict[str, int]:
    """Fold ``doc_id``'s pending updates into a new snapshot, delete them, keep the newest
    :data:`KEEP_SNAPSHOTS`; on ``conn`` inside the caller's transaction.
    ``before_commit`` runs last (tests pause there to kill the worker)."""
    await conn.execute(query("yjs_lock"), {"id": doc_id})
    cur = await conn.execute(query("yjs_parts"), {"id": doc_id})
    rows = await cur.fetchall()
    update_ids = [int(row_id) for kind, row_id, _ in rows if kind == 1]
    if not update_ids:
        return {"updates": 0, "bytes": 0}
    parts = [zlib.decompress(data) if kind == 0 else bytes(data) for kind, _, data in rows]
    merged = merge(parts)
    compressed = zlib.compress(merged, 9)
    params = {
        "id": doc_id,
        "state": compressed,
        "updates": len(update_ids),
        "raw_bytes": sum(len(p) for p in parts),
    }
    await conn.execute(query("yjs_snapshot_insert"), params)
    await conn.execute(query("yjs_updates_delete"), {"id": doc_id, "ids": update_ids})
    await conn.execute(query("yjs_snapshots_prune"), {"id": doc_id, "keep": KEEP_SNAPSHOTS})
    if before_commit is not None:
        await before_commit()
    return {"updates": len(update_ids), "bytes": len(compressed)}
