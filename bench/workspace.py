"""Workspace benchmarks: embedding throughput (raw model vs. end to end through the
trigger, the queue and the batch embed jobs), semantic search p95 over 100,000 vectors
with the HNSW index, and the recompute of a 1,000-cell formula chain.

    python bench/workspace.py                       # the embedded server (has pgvector)
    python bench/workspace.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

The URL names a server with pgvector; the script (re)creates the database
``workspace_bench`` on it. Prints one line per figure and a JSON summary.

* raw: the bundled model (all-MiniLM-L6-v2, numpy) embeds a fixed corpus of ``--docs``
  generated sentences in batches of 32 (``workspace.documents.EMBED_BATCH``), one thread.
* end to end: the same corpus inserted by SQL in one transaction; time from the commit
  until every document has its vector (polled every 50 ms), with one in-process worker
  (concurrency 10) running the index and embed jobs the trigger enqueued.
* search: ``--vectors`` random unit vectors (384-d, the model's size; random because
  embedding 100,000 texts here would take hours), the HNSW index built, then
  ``--queries`` searches through the application's own SQL (``search_semantic``), as a
  user under row-level security; the p50/p95 of the query alone, and of the model
  embedding one query text.
* chain: A1..A1000 each ``=A(n-1)+0.5``; A1 changed; the recompute job timed.
"""

# ruff: noqa: E402 (the imports follow the sys.path fix below)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, and the file's own name
# would shadow the workspace package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import math
import random
import statistics
import time
from typing import Any
from uuid import uuid4

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

from nightcrew import App
from nightcrew.testing import drain
from workspace import documents
from workspace.app import install
from workspace.embedding import LocalMiniLM, vector_literal
from workspace.sql import query

WORDS = [
    *[
        "the",
        "crew",
        "repaired",
        "a",
        "truck",
        "engine",
        "and",
        "replaced",
        "brake",
        "pads",
        "before",
        "the",
        "storm",
    ],
    *[
        "while",
        "accountants",
        "filed",
        "quarterly",
        "taxes",
        "and",
        "bakers",
        "proofed",
        "sourdough",
        "loaves",
    ],
    *[
        "in",
        "warm",
        "ovens",
        "as",
        "engineers",
        "poured",
        "concrete",
        "slabs",
        "inspected",
        "roofs",
        "and",
        "wrote",
    ],
    *["invoices", "for", "clients"],
]


def corpus(count: int, seed: int = 11) -> list[tuple[str, str]]:
    """``count`` (title, content) pairs of about 25 words, the same for a given seed."""
    rng = random.Random(seed)
    return [
        (f"note {n}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(18, 30))))
        for n in range(count)
    ]


def fresh_database(server: str, name: str) -> str:
    """Drop and create ``name`` on ``server``; migrate nightcrew and the workspace."""
    from nightcrew.db.migrate import migrate  # the bench may use internals; apps may not

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    migrate(url)
    migrate(url, package="workspace", schema="workspace")
    return url


def raw_rate(model: LocalMiniLM, docs: list[tuple[str, str]]) -> float:
    """Documents per second of the model alone, in batches of 32."""
    texts = [f"{t}\n{c}" for t, c in docs]
    model.embed(texts[:4])  # load the weights outside the timing
    started = time.perf_counter()
    for i in range(0, len(texts), documents.EMBED_BATCH):
        model.embed(texts[i : i + documents.EMBED_BATCH])
    return len(texts) / (time.perf_counter() - started)


async def end_to_end_rate(url: str, model: LocalMiniLM, docs: list[tuple[str, str]]) -> float:
    """Documents per second from one committed insert of ``docs`` to all embedded."""
    app = App(url, migrate_on_start=False, concurrency=10)
    install(app, embedder=model)
    app.sync_job_types()
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO workspace.documents (owner, title, content) VALUES ('bench', %s, %s)",
                docs,
            )
        conn.commit()
        started = time.perf_counter()
    worker = asyncio.create_task(drain(app, timeout=3600))
    elapsed = await seconds_until_embedded(url, len(docs), started)
    await worker  # the remaining index and no-op embed jobs
    await app.aclose()
    return len(docs) / elapsed


async def seconds_until_embedded(url: str, count: int, started: float) -> float:
    """Seconds from ``started`` until ``count`` vectors are stored (polled every 50 ms)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while True:
            cur = await conn.execute("SELECT count(*) FROM workspace.embeddings")
            row = await cur.fetchone()
            if row is not None and row[0] >= count:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)


def load_vectors(url: str, count: int, dimension: int = 384, seed: int = 5) -> float:
    """Insert ``count`` documents with random unit vectors (triggers off: no jobs) and
    build the HNSW index; returns the index build seconds."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers: no jobs
        conn.execute("DROP INDEX IF EXISTS workspace.embeddings_hnsw_384")
        with conn.cursor().copy(
            "COPY workspace.documents (id, owner, title, content, content_hash) FROM STDIN"
        ) as copy:
            ids = [uuid4() for _ in range(count)]
            for n, doc_id in enumerate(ids):
                copy.write_row((doc_id, "bench", f"vector {n}", "", b"h"))
        with conn.cursor().copy(
            "COPY workspace.embeddings (document_id, model, owner, dimension, content_hash,"
            " embedding) FROM STDIN"
        ) as copy:
            for start in range(0, count, 10_000):
                block = rng.standard_normal((min(10_000, count - start), dimension))
                block /= np.linalg.norm(block, axis=1, keepdims=True)
                for doc_id, vector in zip(ids[start:], block, strict=False):
                    copy.write_row((doc_id, "random", "bench", dimension, b"h",
                                    vector_literal(vector.tolist())))  # fmt: skip
        conn.execute(
            "INSERT INTO workspace.embedding_model (model, dimension) VALUES ('random', 384)"
            " ON CONFLICT (singleton) DO UPDATE SET model = 'random', dimension = 384"
        )
        conn.commit()
        conn.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        conn.execute(
            "CREATE INDEX embeddings_hnsw_384 ON workspace.embeddings"
            " USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE dimension = 384"
        )
        conn.commit()
        conn.execute("ANALYZE workspace.embeddings")
        conn.commit()
    return time.perf_counter() - started


def search_latencies(url: str, queries: int, limit: int = 10) -> tuple[list[float], str]:
    """Milliseconds of ``queries`` semantic searches (the app's SQL, as user ``bench``
    under RLS), and the plan of one."""
    rng = np.random.default_rng(99)
    statement = query("search_semantic").format(dim=psycopg.sql.SQL("384"))
    timings: list[float] = []
    with psycopg.connect(url) as conn:
        conn.execute("SET ROLE nightcrew_api")
        conn.execute("SELECT set_config('nightcrew.user_id', 'bench', false)")
        conn.execute(query("search_iterative"), {"ef_search": "40"})
        plan = ""
        for n in range(queries + 10):
            vector = rng.standard_normal(384)
            vector /= np.linalg.norm(vector)
            params = {"vector": vector_literal(vector.tolist()), "model": "random", "limit": limit}
            started = time.perf_counter()
            found = conn.execute(statement, params).fetchall()
            elapsed = (time.perf_counter() - started) * 1000
            assert len(found) == limit
            if n >= 10:  # the first ten warm the cache
                timings.append(elapsed)
        rows = conn.execute(psycopg.sql.SQL("EXPLAIN ") + statement, params).fetchall()
        plan = "\n".join(r[0] for r in rows)
        conn.rollback()
    return timings, plan


async def chain_recompute_seconds(url: str, model: LocalMiniLM, length: int = 1000) -> float:
    """Seconds of the recompute job after A1 of a ``length``-cell chain changes."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO workspace.sheets (name, owner) VALUES ('chain', 'bench')")
        conn.execute("INSERT INTO workspace.cells (sheet, ref, owner, input)"
                     " VALUES ('chain', 'A1', 'bench', 1)")  # fmt: skip
        conn.execute(
            "INSERT INTO workspace.cells (sheet, ref, owner, formula) SELECT 'chain', 'A' || n,"
            " 'bench', '=A' || (n - 1) || '+0.5' FROM generate_series(2, %s) n", (length,)
        )  # fmt: skip
        conn.execute(
            "INSERT INTO workspace.cell_dependencies (sheet, ref, depends_on) SELECT 'chain',"
            " 'A' || n, 'A' || (n - 1) FROM generate_series(2, %s) n", (length,)
        )  # fmt: skip
        conn.commit()
    app = App(url, migrate_on_start=False)
    install(app, embedder=model)
    await drain(app, queues=["workspace"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE workspace.cells SET input = 2 WHERE sheet = 'chain' AND ref = 'A1'")
    await drain(app, queues=["workspace"])
    await app.aclose()
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT extract(epoch FROM completed_at - started_at) FROM nightcrew.jobs"
            " WHERE type = 'workspace.recompute_formulas' ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
        last = conn.execute(
            "SELECT value FROM workspace.cells WHERE sheet = 'chain' AND ref = %s",
            (f"A{length}",),
        ).fetchone()
    assert row is not None and last is not None and float(last[0]) == 2 + 0.5 * (length - 1)
    return float(row[0])


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(pct / 100 * len(ordered)) - 1))]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    """Run every figure and return the summary."""
    from nightcrew.db import embedded

    server = args.database_url or embedded.start()
    model = LocalMiniLM()
    docs = corpus(args.docs)
    results: dict[str, Any] = {"docs": args.docs, "vectors": args.vectors}

    only = set(args.only.split(","))
    url = fresh_database(server, args.db_name)
    if "embed" in only:
        await embedding_figures(url, model, docs, results)
    if "chain" in only:
        results["chain_recompute_s"] = round(await chain_recompute_seconds(url, model), 3)
        print(f"1,000-cell chain recompute: {results['chain_recompute_s']} s")
    if "search" in only:
        await search_figures(server, model, args, results)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
    return results


async def embedding_figures(
    url: str, model: LocalMiniLM, docs: list[tuple[str, str]], results: dict[str, Any]
) -> None:
    """Raw and end-to-end embedding rates, in the same run."""
    results["raw_docs_per_s"] = round(raw_rate(model, docs), 1)
    print(f"raw model: {results['raw_docs_per_s']} docs/s ({len(docs)} docs, batches of 32)")
    results["e2e_docs_per_s"] = round(await end_to_end_rate(url, model, docs), 1)
    ratio = results["e2e_docs_per_s"] / results["raw_docs_per_s"]
    results["e2e_over_raw"] = round(ratio, 3)
    print(f"end to end: {results['e2e_docs_per_s']} docs/s ({ratio:.0%} of raw)")


async def search_figures(
    server: str, model: LocalMiniLM, args: argparse.Namespace, results: dict[str, Any]
) -> None:
    """HNSW build, search latency over ``args.vectors`` vectors, query embedding time."""
    url = fresh_database(server, args.db_name)
    results["hnsw_build_s"] = round(load_vectors(url, args.vectors), 1)
    print(f"{args.vectors:,} vectors loaded; HNSW index built in {results['hnsw_build_s']} s")
    timings, plan = search_latencies(url, args.queries)
    results["search_p50_ms"] = round(statistics.median(timings), 2)
    results["search_p95_ms"] = round(percentile(timings, 95), 2)
    results["search_uses_hnsw"] = "embeddings_hnsw_384" in plan
    print(
        f"semantic search over {args.vectors:,}: p50 {results['search_p50_ms']} ms, "
        f"p95 {results['search_p95_ms']} ms (HNSW used: {results['search_uses_hnsw']})"
    )
    query_times = []
    for n in range(30):
        started = time.perf_counter()
        model.embed([f"automobile repair question {n}"])
        query_times.append((time.perf_counter() - started) * 1000)
    results["query_embed_p95_ms"] = round(percentile(query_times, 95), 1)
    print(f"embedding one query text: p95 {results['query_embed_p95_ms']} ms")


def cli() -> None:
    """Parse the command line, run, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a server with pgvector (default: embedded)")
    parser.add_argument("--db-name", default="workspace_bench")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", default="embed,chain,search", help="a subset, comma-separated")
    args = parser.parse_args()
    print(json.dumps({"summary": True, **asyncio.run(main(args))}))


if __name__ == "__main__":
    cli()
