"""Bulk enqueue taken apart: from the COPY ceiling to ``aenqueue_many``, one step at a time.

    python bench/bulk_variants.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Each variant writes 20 calls of 1,000 rows into ``nightcrew.jobs`` (database ``--db-name``,
created and migrated if missing), each call one transaction, every run after a TRUNCATE and a
CHECKPOINT; the variants run interleaved (the order reversed every other round) and each
prints its median jobs/s and the median of its per-round ratios to the first one:

* ceiling      -- the COPY ceiling of ``floors.py``: pre-encoded rows, sync psycopg, one write
* split        -- the same rows from async psycopg, written as ``aenqueue_many`` streams them
                  (32 rows, then chunks of 128), BEGIN and COMMIT by hand
* wake         -- ``split`` with the wake-up ``aenqueue_many`` sends before its COMMIT
* items        -- ``wake``, each call first building the 1,000 dicts the bulk figure passes
                  (close to ``python_copy_floor``, which has no wake-up and one write)
* library      -- ``aenqueue_many`` with those dicts
* library_nogc -- the same with the garbage collector off during the run

``--only`` picks variants (comma-separated, the first is the base of the ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import time
from collections.abc import Callable
from itertools import pairwise

import psycopg

# bench/ is the script's directory
from floors import COPY_JOBS, encoded_chunks, settle
from throughput import bench_database, bulk_items, client_app

CALLS, ROWS = 20, 1_000
WAKE_AND_COMMIT = (
    "SELECT array_agg(pg_notify('nightcrew_jobs', q)::text)"
    " FROM unnest('{default}'::text[]) AS q; COMMIT"
)


def settled(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        settle(conn)


def ceiling(url: str) -> float:
    chunks = encoded_chunks()[:CALLS]
    settled(url)
    with psycopg.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        for chunk in chunks:
            with conn.transaction(), conn.cursor().copy(COPY_JOBS) as copy:
                copy.write(chunk)
        return CALLS * ROWS / (time.perf_counter() - t0)


def streamed(chunk: bytes) -> list[bytes]:
    """A call's rows cut as ``aenqueue_many`` writes them: 32 rows, then 128 at a time."""
    lines = chunk.splitlines(keepends=True)
    cuts = [0, 32, *range(160, len(lines), 128), len(lines)]
    return [b"".join(lines[a:b]) for a, b in pairwise(cuts)]


async def by_hand(url: str, wake: bool, items: bool) -> float:
    calls = [streamed(chunk) for chunk in encoded_chunks()[:CALLS]]
    settled(url)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        for start, pieces in zip(range(0, CALLS * ROWS, ROWS), calls, strict=True):
            built = bulk_items(start, ROWS) if items else None
            await conn.execute("BEGIN")
            async with conn.cursor().copy(COPY_JOBS) as copy:
                for piece in pieces:
                    await copy.write(piece)
            await conn.execute(WAKE_AND_COMMIT if wake else "COMMIT")
            del built  # held through the call, as a library holds its argument
        return CALLS * ROWS / (time.perf_counter() - t0)


async def library(url: str, collect: bool) -> float:
    app = client_app(url, 1)
    await app.apool()
    settled(url)
    if not collect:
        gc.disable()
    try:
        t0 = time.perf_counter()
        for start in range(0, CALLS * ROWS, ROWS):
            await app.aenqueue_many(bulk_items(start, ROWS))
        return CALLS * ROWS / (time.perf_counter() - t0)
    finally:
        gc.enable()
        await app.aclose()


VARIANTS: dict[str, Callable[[str], float]] = {
    "ceiling": ceiling,
    "split": lambda url: asyncio.run(by_hand(url, wake=False, items=False)),
    "wake": lambda url: asyncio.run(by_hand(url, wake=True, items=False)),
    "items": lambda url: asyncio.run(by_hand(url, wake=True, items=True)),
    "library": lambda url: asyncio.run(library(url, collect=True)),
    "library_nogc": lambda url: asyncio.run(library(url, collect=False)),
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--only", default=",".join(VARIANTS))
    args = ap.parse_args(argv)
    if not args.database_url:
        ap.error("--database-url (or NIGHTCREW_DATABASE_URL) names the server to measure")
    names = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := set(names) - set(VARIANTS):
        ap.error(f"--only: unknown variants {sorted(unknown)}; known: {list(VARIANTS)}")
    url = bench_database(args.database_url, args.db_name)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names if round_ % 2 == 0 else names[::-1]:
            rates[name].append(VARIANTS[name](url))
    base = rates[names[0]]
    for name, values in rates.items():
        ratio = statistics.median(v / b for v, b in zip(values, base, strict=True))
        print(f"{name:13s} {statistics.median(values):9,.0f} jobs/s  {ratio:.2f}  "
              f"[{min(values):,.0f}-{max(values):,.0f}]")  # fmt: skip


if __name__ == "__main__":
    main()
