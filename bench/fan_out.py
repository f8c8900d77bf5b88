"""Fan-out/fan-in benchmark: ``app.fan_out`` of N no-op children and one dependent, drained
by worker processes, against N independent jobs drained the same way in the same run.

    python bench/fan_out.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

It uses bench/throughput.py's database (``--db-name``, default ``nightcrew_bench``), worker
processes and handler records. Each rep runs, interleaved:

* independent -- N jobs (``enqueue_many``), CHECKPOINT, workers spawned; seconds from the
                 first handler start until every row is ``completed``
* fan_out     -- one ``app.fan_out`` of N children and a dependent, CHECKPOINT, workers
                 spawned; the same seconds (the dependent included), and the fan-in
                 latency: the dependent's handler start (``time.time()``) minus the last
                 child's ``completed_at`` (the database clock of the same machine; it is
                 the start of the finishing transaction, so the figure errs high)

Prints one JSON line per run, then medians: both times, their ratio (target <= 1.3) and
the fan-in latency (target <= 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from throughput import (
    JOB_TYPE,
    Bench,
    DrainConfig,
    bench_database,
    executed_count,
    read_records,
    start_workers,
    stop_workers,
)

THEN_ID = 99_999_998


def drain(bench: Bench, cfg: DrainConfig, expected: int, timeout: float) -> dict[str, Any]:
    """Spawn the workers on what is enqueued; time it until ``expected`` rows completed."""
    bench.admin.execute("CHECKPOINT")
    outdir = tempfile.mkdtemp(prefix="nc-fan-")
    t_spawn = time.time()
    procs = start_workers(bench.url, cfg, outdir)
    status, t_done = "ok", float("nan")
    try:
        deadline = t_spawn + timeout
        while executed_count(outdir) < expected and status == "ok":
            if time.time() > deadline or not all(p.is_alive() for p in procs):
                status = "timeout" if time.time() > deadline else "worker exited"
            time.sleep(0.01)
        while status == "ok":
            done = bench.completed()
            t_done = time.time()
            if done >= expected:
                break
            if t_done > deadline:
                status = f"timeout (completed {done})"
            time.sleep(0.01)
    finally:
        stop_workers(procs)
    records = read_records(outdir)
    shutil.rmtree(outdir, ignore_errors=True)
    t_first = min((r[2] for r in records), default=float("nan"))
    then_start = next((r[2] for r in records if r[0] == THEN_ID), None)
    return {"status": status, "seconds": t_done - t_first, "executed": len(records),
            "then_start": then_start}  # fmt: skip


def independent(bench: Bench, cfg: DrainConfig, n: int, timeout: float) -> dict[str, Any]:
    """N jobs without dependencies (throughput.py's preload)."""
    bench.reset()
    bench.preload(n)
    return drain(bench, cfg, n, timeout)


def fan_out(bench: Bench, cfg: DrainConfig, n: int, timeout: float) -> dict[str, Any]:
    """One fan_out of N children and their dependent."""
    bench.reset()
    now = time.time()
    t0 = time.perf_counter()
    out = bench.app.fan_out(
        [{"type": JOB_TYPE, "payload": {"i": i, "t": now}} for i in range(n)],
        then={"type": JOB_TYPE, "payload": {"i": THEN_ID, "t": now}},
    )
    enqueue_s = time.perf_counter() - t0
    rec = drain(bench, cfg, n + 1, timeout)
    row = bench.admin.execute(
        "SELECT extract(epoch FROM max(completed_at)),"
        " (SELECT extract(epoch FROM started_at) FROM nightcrew.jobs WHERE id = %(then)s)"
        " FROM nightcrew.jobs WHERE id <> %(then)s",
        {"then": out.then},
    ).fetchone()
    last_child, fetched = (float("nan"), float("nan")) if row is None else map(float, row)
    then_start = rec.pop("then_start")
    fan_in_ms = (then_start - last_child) * 1000 if then_start else None
    # Split for diagnosis: until a worker leased the dependent, and from then to its handler.
    return {**rec, "enqueue_s": enqueue_s, "fan_in_ms": fan_in_ms,
            "leased_ms": (fetched - last_child) * 1000,
            "handler_ms": (then_start - fetched) * 1000 if then_start else None}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--children", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--drain-config", default="1:50:50:500:5",
                    metavar="P:CONC:FETCH:CBATCH:CINT_MS")  # fmt: skip
    ap.add_argument("--timeout", type=float, default=240.0)
    a = ap.parse_args(argv)
    if not a.database_url:
        ap.error("give --database-url or set NIGHTCREW_DATABASE_URL")
    cfg = DrainConfig.parse(a.drain_config)
    try:
        url = bench_database(a.database_url, a.db_name)
    except psycopg.Error as exc:
        sys.exit(f"cannot prepare the benchmark database: {exc}")
    bench = Bench(url, {"chunk": 1_000})
    runs: dict[str, list[dict[str, Any]]] = {"independent": [], "fan_out": []}
    try:
        for rep in range(1, a.reps + 1):
            for figure, run in (("independent", independent), ("fan_out", fan_out)):
                rec = {"figure": figure, "rep": rep, "n": a.children, "setup": cfg.describe(),
                       **run(bench, cfg, a.children, a.timeout),
                       "load1": os.getloadavg()[0]}  # fmt: skip
                print(json_line(rec), flush=True)
                runs[figure].append(rec)
    finally:
        bench.reset()
        bench.app.close()
    report(runs)


def json_line(rec: dict[str, Any]) -> str:
    return json.dumps(rec)


def median(runs: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in runs if r["status"] == "ok" and r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def report(runs: dict[str, list[dict[str, Any]]]) -> None:
    alone, fanned = median(runs["independent"], "seconds"), median(runs["fan_out"], "seconds")
    ratios = [f["seconds"] / i["seconds"] for i, f in zip(runs["independent"], runs["fan_out"],
                                                          strict=True)]  # fmt: skip
    print("\nfan-out — medians")
    print(f"  independent jobs drained (s)        {alone:.2f}")
    print(f"  fan_out children + dependent (s)    {fanned:.2f}")
    print(f"  ratio fan_out / independent         {statistics.median(ratios):.2f}"
          f"  (per rep: {', '.join(f'{r:.2f}' for r in ratios)}; target <= 1.3)")  # fmt: skip
    print(f"  fan-in: dependent start - last child completed (ms)"
          f"  {median(runs['fan_out'], 'fan_in_ms'):.1f}  (target <= 50)")  # fmt: skip
    print(f"    of which: until leased (ms)       {median(runs['fan_out'], 'leased_ms'):.1f}")
    print(f"    leased to handler start (ms)      {median(runs['fan_out'], 'handler_ms'):.1f}")
    print(f"  fan_out enqueue (s)                 {median(runs['fan_out'], 'enqueue_s'):.2f}")


if __name__ == "__main__":
    main()
