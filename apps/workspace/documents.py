"""Documents: create/read/update/delete as the acting user, the index and embed jobs'
work (guarded by the content hash), and search (text, semantic, hybrid)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL

from workspace.embedding import EmbeddingProvider, vector_literal
from workspace.errors import NotFound
from workspace.sql import query

INDEX_TYPE = "workspace.index_document"
EMBED_TYPE = "workspace.embed_document"
EMBED_BATCH = 32
"""Documents per model call when several wait (the job's own first)."""
CLAIM_SECONDS = 300
RRF_K = 60
"""Reciprocal rank fusion's constant: score = sum over the lists of 1 / (RRF_K + rank)."""
CANDIDATES = 50
"""How deep each list goes before fusion (hybrid)."""

Conn = psycopg.AsyncConnection[Any]
Mode = Literal["text", "semantic", "hybrid"]


async def create(conn: Conn, title: str, content: str) -> UUID:
    """A new document owned by the acting user; the trigger enqueues its jobs."""
    cur = await conn.execute(query("document_insert"), {"title": title, "content": content})
    row = await cur.fetchone()
    assert row is not None
    return UUID(str(row[0]))


async def update(conn: Conn, doc_id: UUID, title: str | None, content: str | None) -> None:
    """Change title and/or content; :class:`NotFound` when not visible."""
    params = {"id": doc_id, "title": title, "content": content}
    cur = await conn.execute(query("document_update"), params)
    if await cur.fetchone() is None:
        raise NotFound(f"unknown document {doc_id}")


async def delete(conn: Conn, doc_id: UUID) -> None:
    """Delete a document (its vectors, updates and snapshots go with it)."""
    cur = await conn.execute(query("document_delete"), {"id": doc_id})
    if await cur.fetchone() is None:
        raise NotFound(f"unknown document {doc_id}")


async def get(conn: Conn, doc_id: UUID) -> dict[str, Any]:
    """The document with its index and embedding status and its unfinished jobs."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("document_get"), {"id": doc_id})
        doc = await cur.fetchone()
        if doc is None:
            raise NotFound(f"unknown document {doc_id}")
        await cur.execute(query("document_jobs"), {"id": doc_id, "types": [INDEX_TYPE, EMBED_TYPE]})
        jobs = await cur.fetchall()
    return {**_jsonable(doc), "jobs": [_jsonable(j) for j in jobs]}


async def listing(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    """The newest documents the caller sees, with their status."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("document_list"), {"limit": limit})
        return [_jsonable(row) for row in await cur.fetchall()]


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if hasattr(v, "isoformat") else str(v) if isinstance(v, UUID) else v)
        for k, v in row.items()
    }


# ---- the index job ---------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """What a job read: one content version of a document."""

    id: UUID
    title: str
    content: str
    content_hash: bytes


async def read_version(conn: Conn, doc_id: UUID) -> Version | None:
    """The document's current content, or None when it was deleted."""
    cur = await conn.execute(query("index_read"), {"id": doc_id})
    row = await cur.fetchone()
    return None if row is None else Version(doc_id, row[0], row[1], bytes(row[2]))


async def write_index(conn: Conn, version: Version) -> bool:
    """Store the tsvector of ``version`` if it is still the current content (and not
    indexed yet); False when the document moved on or was deleted."""
    params = {
        "id": version.id,
        "title": version.title,
        "content": version.content,
        "hash": version.content_hash,
    }
    cur = await conn.execute(query("index_write"), params)
    return await cur.fetchone() is not None


async def index_document(conn: Conn, doc_id: UUID) -> dict[str, Any]:
    """The index job: read the current content, write its tsvector under the hash guard."""
    version = await read_version(conn, doc_id)
    if version is None:
        return {"document_id": str(doc_id), "indexed": False, "summary": "document deleted"}
    written = await write_index(conn, version)
    state = "indexed" if written else "already current or superseded"
    return {"document_id": str(doc_id), "indexed": written, "summary": state}


# ---- the embed job ---------------------------------------------------------------------


async def current_model(conn: Conn, provider: EmbeddingProvider) -> tuple[str, int]:
    """The searched model and dimension (the provider's, recorded on first use)."""
    await conn.execute(
        query("embedding_model_init"), {"model": provider.model, "dimension": provider.dimension}
    )
    cur = await conn.execute(query("embedding_model_get"))
    row = await cur.fetchone()
    assert row is not None
    return str(row[0]), int(row[1])


async def claim(
    conn: Conn,
    provider: EmbeddingProvider,
    job_id: UUID,
    doc_id: UUID | None,
    batch: int = EMBED_BATCH,
) -> list[Version]:
    """Claim up to ``batch`` documents that need the provider's vector: ``doc_id`` and
    others waiting, or none when ``doc_id`` needs nothing (``None``: any waiting)."""
    params = {
        "job": job_id,
        "id": doc_id,
        "batch": batch,
        "model": provider.model,
        "claim_seconds": CLAIM_SECONDS,
    }
    claimed: list[Version] = []
    if doc_id is not None:
        cur = await conn.execute(query("embed_claim_own"), params)
        claimed = [_version(row) for row in await cur.fetchall()]
        if not claimed:  # done or in another job's batch: the waiting ones have their jobs
            return []
    params["batch"] = batch - len(claimed)
    cur = await conn.execute(query("embed_claim"), params)
    return claimed + [_version(row) for row in await cur.fetchall()]


def _version(row: tuple[Any, ...]) -> Version:
    return Version(UUID(str(row[0])), row[2], row[3], bytes(row[4]))


async def write_embeddings(
    conn: Conn,
    provider: EmbeddingProvider,
    job_id: UUID,
    versions: list[Version],
    vectors: list[list[float]],
) -> int:
    """Store the vectors whose content is still current; release the claims. Returns how
    many were written."""
    params = {
        "model": provider.model,
        "dimension": provider.dimension,
        "ids": [v.id for v in versions],
        "hashes": [v.content_hash for v in versions],
        "vectors": [vector_literal(x) for x in vectors],
    }
    async with conn.transaction():
        cur = await conn.execute(query("embed_write"), params)
        written = len(await cur.fetchall())
        await conn.execute(query("embed_release"), {"ids": params["ids"], "job": job_id})
    return written


async def embed_batch(
    conn: Conn, provider: EmbeddingProvider, job_id: UUID, doc_id: UUID | None
) -> tuple[int, int]:
    """Claim a batch, embed it in one model call, store it: (claimed, written)."""
    versions = await claim(conn, provider, job_id, doc_id)
    if not versions:
        return 0, 0
    texts = [f"{v.title}\n{v.content}" for v in versions]
    vectors = await asyncio.to_thread(provider.embed, texts)
    return len(versions), await write_embeddings(conn, provider, job_id, versions, vectors)


async def missing_embeddings(conn: Conn, model: str) -> tuple[int, int]:
    """(documents without a current vector of ``model``, all documents)."""
    cur = await conn.execute(query("embed_missing_count"), {"model": model})
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def switch_model(conn: Conn, provider: EmbeddingProvider) -> None:
    """Search the provider's vectors from now on; the old model's are deleted."""
    await conn.execute(
        query("embedding_model_switch"), {"model": provider.model, "dimension": provider.dimension}
    )


# ---- search ----------------------------------------------------------------------------


async def search_text(conn: Conn, q: str, limit: int) -> list[dict[str, Any]]:
    """Documents matching ``q`` (web-search syntax), by ``ts_rank``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("search_text"), {"q": q, "limit": limit})
        return [_hit(row) for row in await cur.fetchall()]


async def search_semantic(
    conn: Conn, provider: EmbeddingProvider, q: str, limit: int
) -> list[dict[str, Any]]:
    """Documents nearest to ``q``'s embedding by cosine distance (HNSW)."""
    cur = await conn.execute(query("embedding_model_get"))
    row = await cur.fetchone()
    if row is None:  # nothing embedded yet
        return []
    model, dimension = str(row[0]), int(row[1])
    if model != provider.model:  # a re-embed is under way: search the provider's vectors
        model, dimension = provider.model, provider.dimension
    vectors = await asyncio.to_thread(provider.embed, [q])
    await conn.execute(query("search_iterative"), {"ef_search": str(max(40, limit * 2))})
    statement = query("search_semantic").format(dim=SQL(str(int(dimension))))
    params = {"vector": vector_literal(vectors[0]), "model": model, "limit": limit}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(statement, params)
        return [_hit(row) for row in await cur.fetchall()]


async def search(
    conn: Conn, provider: EmbeddingProvider, q: str, mode: Mode, limit: int
) -> list[dict[str, Any]]:
    """Search in ``mode``; hybrid fuses the text and semantic lists by reciprocal rank."""
    if mode == "text":
        return await search_text(conn, q, limit)
    if mode == "semantic":
        return await search_semantic(conn, provider, q, limit)
    text = await search_text(conn, q, CANDIDATES)
    semantic = await search_semantic(conn, provider, q, CANDIDATES)
    return fuse(text, semantic)[:limit]


def fuse(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reciprocal rank fusion: each document scores sum(1 / (RRF_K + rank)) over the
    lists it is in (rank from 1); ties keep the first list's order."""
    scores: dict[str, float] = {}
    hits: dict[str, dict[str, Any]] = {}
    matched: dict[str, list[str]] = {}
    for name, ranked in zip(("text", "semantic"), lists, strict=False):
        for rank, hit in enumerate(ranked, start=1):
            scores[hit["id"]] = scores.get(hit["id"], 0.0) + 1.0 / (RRF_K + rank)
            hits.setdefault(hit["id"], hit)
            matched.setdefault(hit["id"], []).append(name)
    order = sorted(scores, key=lambda doc: -scores[doc])
    return [{**hits[d], "score": round(scores[d], 6), "matched": matched[d]} for d in order]


def _hit(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(row["id"]), "title": row["title"], "score": round(float(row["score"]), 6)}
