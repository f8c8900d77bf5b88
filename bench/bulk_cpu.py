"""Client CPU per item of bulk enqueue: ``aenqueue_many`` in calls of ``--chunk`` items of the
shape the throughput bench uses (``{"type": "bench.noop", "payload": {"i": i, "t": now}}``).

    python bench/bulk_cpu.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bulk_cpu.py --encode-only              # BulkEncoder alone, no database
    python bench/bulk_cpu.py --database-url ... --ab old=/work/old/src --ab new=src --rounds 7

Items are built before each call's timing, so the figure is the library's CPU (validation,
ids, COPY text, psycopg, the event loop) per item: ``time.process_time`` of this process,
which, unlike jobs/s, barely depends on how busy the shared machine is; ``sys_us_per_item``
is the part spent in the kernel (sending the rows, waiting for the server). ``--encode-only``
times only ``BulkEncoder.chunks`` (the per-item Python), without a server.

``--ab NAME=PYTHONPATH`` (repeatable) runs this script once per variant and round in a
child process with that ``PYTHONPATH`` (a tree's ``src``), alternating the variants, and
prints each variant's median and the ratios to the first. Uses the database ``--db-name``
(created and migrated if missing; ``nightcrew.jobs`` is truncated before every run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

JOB_TYPE = "bench.noop"
SELF = resource.RUSAGE_SELF


def items(start: int, count: int) -> list[dict[str, Any]]:
    now = time.time()
    return [{"type": JOB_TYPE, "payload": {"i": i, "t": now}} for i in range(start, start + count)]


async def _never_called(ctx: Any, payload: Any) -> None:  # pragma: no cover - never run
    raise AssertionError("the client App never runs jobs")


def encode_only(n: int, chunk: int) -> dict[str, float]:
    from nightcrew import App
    from nightcrew.lifecycle.bulk import BulkEncoder

    app = App("postgresql://unused", migrate_on_start=False)
    app.job(JOB_TYPE, max_attempts=1)(_never_called)
    batches = [items(start, chunk) for start in range(0, n, chunk)]
    for batch in batches[:5]:  # warm up
        for _ in BulkEncoder(app.registry, strict_types=app.strict_types).chunks(batch):
            pass
    cpu = 0.0
    for batch in batches:
        t0 = time.process_time()
        for _ in BulkEncoder(app.registry, strict_types=app.strict_types).chunks(batch):
            pass
        cpu += time.process_time() - t0
    return {"encode_us_per_item": 1e6 * cpu / n}


async def full(url: str, n: int, chunk: int) -> dict[str, float]:
    import psycopg

    from nightcrew import App

    app = App(url, migrate_on_start=False, pool_min_size=1, pool_max_size=1)
    app.job(JOB_TYPE, max_attempts=1)(_never_called)
    await app.apool()
    for start in range(0, 5 * chunk, chunk):  # warm up
        await app.aenqueue_many(items(start, chunk))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs CASCADE")
    cpu = wall = system = 0.0
    for start in range(0, n, chunk):
        batch = items(start, chunk)
        t0, c0, s0 = time.perf_counter(), time.process_time(), resource.getrusage(SELF).ru_stime
        await app.aenqueue_many(batch)
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
        system += resource.getrusage(SELF).ru_stime - s0
    await app.aclose()
    return {
        "cpu_us_per_item": 1e6 * cpu / n,
        "sys_us_per_item": 1e6 * system / n,
        "jobs_per_s": n / wall,
    }


def prepare(server_url: str, db_name: str) -> str:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from nightcrew.db.migrate import migrate

    with psycopg.connect(server_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db_name,))
        if not found.fetchone():
            conn.execute(f'CREATE DATABASE "{db_name}"')
    url = make_conninfo(server_url, dbname=db_name)
    migrate(url)
    return url


def ab(args: argparse.Namespace) -> None:
    variants = [spec.split("=", 1) for spec in args.ab]
    base = [sys.executable, __file__, "--n", str(args.n), "--chunk", str(args.chunk)]
    if args.encode_only:
        base.append("--encode-only")
    else:
        url = prepare(args.database_url, args.db_name)
        base += ["--url", url]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in variants}
    for round_ in range(args.rounds):
        order = variants if round_ % 2 == 0 else variants[::-1]
        for name, path in order:
            env = {**os.environ, "PYTHONPATH": str(Path(path).resolve())}
            out = subprocess.run(base, env=env, check=True, capture_output=True, text=True)
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            runs[name].append(figures)
            print(json.dumps({"round": round_, "variant": name, **figures}), flush=True)
    first = variants[0][0]
    medians = {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for name, rs in runs.items()
    }
    for name, figures in medians.items():
        ratios = {
            f"{key}_vs_{first}": value / medians[first][key] for key, value in figures.items()
        }
        print(json.dumps({"variant": name, "median": figures, **ratios}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--db-name", default="nightcrew_bulk_cpu")
    parser.add_argument("--url", help=argparse.SUPPRESS)  # a prepared database (--ab's runs)
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--chunk", type=int, default=1_000)
    parser.add_argument("--encode-only", action="store_true")
    parser.add_argument("--ab", action="append", default=[], metavar="NAME=PYTHONPATH")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not args.encode_only and not (args.url or args.database_url):
        parser.error("give --database-url (or NIGHTCREW_DATABASE_URL), or --encode-only")
    if args.ab:
        ab(args)
        return
    if args.encode_only:
        figures = encode_only(args.n, args.chunk)
    else:
        url = args.url or prepare(args.database_url, args.db_name)
        figures = asyncio.run(full(url, args.n, args.chunk))
    print(json.dumps({"load1": os.getloadavg()[0], **figures}))


if __name__ == "__main__":
    main()
