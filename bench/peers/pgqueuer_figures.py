"""PgQueuer's figures for ``bench/throughput.py`` and ``make bench``; run by PgQueuer's own venv.

    /tmp/peerbench/venv-pgqueuer/bin/python bench/peers/pgqueuer_figures.py \\
        --harness ../shared/bench-peers --port 5432 single

Drives the shared harness (its ``driver.py`` and PgQueuer adapter, read-only) for the
harness's figures, and adds the 32-client concurrent enqueue the harness lacks. Prints one
JSON line per run; the last line of stdout is the result. Nothing of PgQueuer is imported by
nightcrew: this file only runs in PgQueuer's venv, as a child process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from typing import Any

FIGURES = ("install", "single", "concurrent", "bulk", "drain", "latency")


def load_driver(harness: str, port: int) -> Any:
    """Import the harness's driver.py with its environment set (it reads it on import)."""
    os.environ["PGPORT"] = str(port)
    base = tempfile.mkdtemp(prefix="nc-pgq-")
    os.environ["BENCH_BASE"] = base
    os.environ["BENCH_RESULTS"] = os.path.join(base, "results.jsonl")
    sys.path.insert(0, os.path.join(os.path.abspath(harness), "harness"))
    import driver  # type: ignore[import-not-found]

    return driver


async def concurrent(driver: Any, clients: int, n: int) -> dict[str, Any]:
    """``n`` single enqueues from ``clients`` tasks, each on its own asyncpg connection."""
    import asyncpg  # type: ignore[import-not-found]
    from pgqueuer.db import AsyncpgDriver  # type: ignore[import-not-found]
    from pgqueuer.queries import Queries  # type: ignore[import-not-found]

    bench = driver.Bench("pgqueuer")
    bench.reset()
    conns = [await asyncpg.connect(bench.ad.DSN) for _ in range(clients)]
    queries = [Queries(AsyncpgDriver(c)) for c in conns]
    for q in queries:  # warm-up: every connection has prepared its statement
        await q.enqueue("noop", b'{"i": 99999999, "t": 0}')
    bench.reset()

    async def client(q: Any, ids: range) -> None:
        for i in ids:
            await q.enqueue("noop", json.dumps({"i": i, "t": time.time()}).encode())

    t0 = time.perf_counter()
    await asyncio.gather(*(client(q, range(k, n, clients)) for k, q in enumerate(queries)))
    dt = time.perf_counter() - t0
    for c in conns:
        await c.close()
    return {"figure": "concurrent", "clients": clients, "n": n, "seconds": dt, "rate": n / dt,
            "stored": bench.stored(), "status": "ok"}  # fmt: skip


def last_result(driver: Any) -> dict[str, Any]:
    with open(driver.RESULTS) as f:
        return dict(json.loads(f.read().splitlines()[-1]))


async def run(args: argparse.Namespace) -> dict[str, Any] | None:
    driver = load_driver(args.harness, args.port)
    if args.figure == "concurrent":
        return await concurrent(driver, args.clients, args.n or 10_000)
    if args.figure == "install":
        bench = driver.Bench("pgqueuer")
        if not bench.pg.scalar(bench.ad.INSTALLED_SQL):
            bench.ad.install()
        return None
    if args.n:  # the harness's sizes are module constants: use the caller's
        attr = {"single": "N_A", "bulk": "N_B", "drain": "N_C", "latency": "N_D"}[args.figure]
        setattr(driver, attr, args.n)
    bench = driver.Bench("pgqueuer")
    if args.figure == "single":
        await bench.A(1)
    elif args.figure == "bulk":
        await bench.B(1)
    elif args.figure == "drain":
        procs, _, batch = args.drain.partition("x")
        await bench.C(1, int(procs), int(batch))
    else:
        await bench.D(1, *bench.ad.LATENCY_CONFIG)
    rec = last_result(driver)
    return {**rec, "figure": args.figure}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("figure", choices=FIGURES)
    ap.add_argument("--harness", required=True, help="the shared bench-peers folder")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--drain", default="2x50", help="PROCSxBATCH_SIZE")
    args = ap.parse_args()
    rec = asyncio.run(run(args))
    if rec is not None:
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
