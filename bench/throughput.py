"""Throughput and pickup-latency benchmark of the nightcrew core engine on one PostgreSQL.

    python bench/throughput.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

It creates (if missing) and migrates a separate database on that server (``--db-name``,
default ``nightcrew_bench``) and empties its tables before every run. Figures:

* single  -- N ``app.enqueue`` calls one at a time from one client (jobs/s)
* bulk    -- ``app.enqueue_many`` in calls of 1,000, and one call of all N (jobs/s)
* drain   -- N pre-enqueued no-op jobs, CHECKPOINT, worker process(es) spawned; rate =
             N / (all rows ``completed`` in the jobs table - first handler start);
             ``--limit-rate 1000/s`` holds every job to one keyed rate limit
* latency -- one idle worker; jobs enqueued one at a time 20 ms apart; handler-start
             ``time.time()`` minus ``time.time()`` just before the enqueue call (ms)

Each figure runs ``--reps`` times (median [min-max]); one JSON line per run and per figure.
Drain first runs every ``--drain-config`` once, then ``--reps`` fresh runs of the fastest.
The method matches the peers' harness (../shared/bench-peers), see bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nightcrew import App, JobContext
from nightcrew.db.migrate import migrate

JOB_TYPE = "bench.noop"
LINE_LEN = 45  # fixed-width handler record: id, enqueue time, start time
WARMUP_ID = 99_999_999
LATENCY_INTERVAL = 0.020
FULL = {"single": 5_000, "bulk": 50_000, "chunk": 1_000, "drain": 20_000, "latency": 300}
QUICK = {"single": 1_000, "bulk": 10_000, "chunk": 1_000, "drain": 5_000, "latency": 100}
DEFAULT_DRAIN_CONFIGS = [
    "1:100:100:500:5", "1:500:500:1000:10",
    "2:100:100:500:5", "2:250:250:1000:5", "2:500:500:1000:10",
]  # fmt: skip
QUICK_DRAIN_CONFIGS = ["1:200:200:1000:5", "2:250:250:1000:5"]


@dataclass(frozen=True)
class DrainConfig:
    """One worker setup: processes x App(concurrency, fetch_batch, complete_batch, interval)."""

    procs: int
    concurrency: int
    fetch_batch: int
    complete_batch: int
    complete_interval_ms: float

    @classmethod
    def parse(cls, spec: str) -> DrainConfig:
        """Parse ``procs:concurrency:fetch_batch:complete_batch:complete_interval_ms``."""
        parts = spec.split(":")
        if len(parts) != 5:
            raise SystemExit(f"--drain-config {spec!r}: expected P:CONC:FETCH:CBATCH:CINT_MS")
        try:
            p, c, f, b = (int(x) for x in parts[:4])
            return cls(p, c, f, b, float(parts[4]))
        except ValueError:
            raise SystemExit(f"--drain-config {spec!r}: fields must be numbers") from None

    def describe(self) -> str:
        """Human-readable setup."""
        return (f"{self.procs} proc x concurrency={self.concurrency} fetch_batch="
                f"{self.fetch_batch} complete_batch={self.complete_batch} "
                f"complete_interval_ms={self.complete_interval_ms:g}")  # fmt: skip


# ---- worker process ------------------------------------------------------------------------


def worker_process(url: str, cfg: DrainConfig, outdir: str, limit_rate: str | None) -> None:
    """Entry point of a spawned worker process; runs until SIGTERM."""
    asyncio.run(_worker(url, cfg, outdir, limit_rate))


def _limits(limit_rate: str | None) -> dict[str, Any]:
    """``limits=`` of the no-op type: one keyed rate limit when asked for."""
    if limit_rate is None:
        return {}
    from nightcrew import Limit

    return {"limits": [Limit("bench", rate=limit_rate)]}


async def _worker(url: str, cfg: DrainConfig, outdir: str, limit_rate: str | None) -> None:
    app = App(
        url, migrate_on_start=False, concurrency=cfg.concurrency, fetch_batch=cfg.fetch_batch,
        complete_batch=cfg.complete_batch, complete_interval_ms=cfg.complete_interval_ms,
    )  # fmt: skip
    out = open(os.path.join(outdir, f"w{os.getpid()}.log"), "a", buffering=1)  # noqa: SIM115

    @app.job(JOB_TYPE, max_attempts=1, **_limits(limit_rate))
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        now = time.time()
        out.write(f"{int(payload['i']):08d} {float(payload['t']):17.6f} {now:17.6f}\n")

    worker = app.worker()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
    await worker.run()
    await app.aclose()
    out.close()


def start_workers(
    url: str, cfg: DrainConfig, outdir: str, limit_rate: str | None = None
) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    args = (url, cfg, outdir, limit_rate)
    procs = [ctx.Process(target=worker_process, args=args) for _ in range(cfg.procs)]
    for p in procs:
        p.start()
    return procs


def stop_workers(procs: list[Any]) -> None:
    for p in procs:
        if p.is_alive() and p.pid:
            os.kill(p.pid, signal.SIGTERM)
    for p in procs:
        p.join(15)
        if p.is_alive():
            p.kill()
            p.join()


def executed_count(outdir: str) -> int:
    return sum(
        os.path.getsize(os.path.join(outdir, n)) // LINE_LEN
        for n in os.listdir(outdir) if n.endswith(".log")
    )  # fmt: skip


def read_records(outdir: str) -> list[tuple[int, float, float]]:
    records = []
    for name in os.listdir(outdir):
        if name.endswith(".log"):
            with open(os.path.join(outdir, name)) as f:
                for line in f:
                    i, t_enq, t_start = line.split()
                    records.append((int(i), float(t_enq), float(t_start)))
    return records


# ---- the benchmark ---------------------------------------------------------------------------


class Bench:
    """Runs the figures against one freshly created/migrated database."""

    def __init__(self, url: str, sizes: dict[str, int], limit_rate: str | None = None) -> None:
        self.url = url
        self.limit_rate = limit_rate
        self.sizes = sizes
        self.app = App(url, migrate_on_start=False)
        self.app.job(JOB_TYPE, max_attempts=1)(_never_called)
        self.admin = psycopg.connect(url, autocommit=True)
        self.runs: dict[str, list[dict[str, Any]]] = {}

    def reset(self) -> None:
        self.admin.execute("TRUNCATE nightcrew.jobs, nightcrew.workers")
        if self.limit_rate is not None:  # (a schema before flow control has no such table)
            self.admin.execute("TRUNCATE nightcrew.limits, nightcrew.limit_reservations,"
                               " nightcrew.limit_slots")  # fmt: skip

    def emit(self, figure: str, **rec: Any) -> None:
        # The 1-minute load average: on a shared machine it says how noisy the run was.
        rec = {"figure": figure, **rec, "load1": os.getloadavg()[0]}
        print(json.dumps(rec), flush=True)
        self.runs.setdefault(figure, []).append(rec)

    def stored(self) -> int:
        row = self.admin.execute("SELECT count(*) FROM nightcrew.jobs").fetchone()
        return int(row[0]) if row else 0

    def single(self, rep: int) -> None:
        n = self.sizes["single"]
        self.app.enqueue(JOB_TYPE, {"i": WARMUP_ID, "t": time.time()})  # pool warm-up
        self.reset()
        t0 = time.perf_counter()
        for i in range(n):
            self.app.enqueue(JOB_TYPE, {"i": i, "t": time.time()})
        dt = time.perf_counter() - t0
        self.emit("single", rep=rep, n=n, seconds=dt, rate=n / dt, stored=self.stored())

    def bulk(self, rep: int, chunk: int) -> None:
        n = self.sizes["bulk"]
        self.reset()
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            now = time.time()
            items = [{"type": JOB_TYPE, "payload": {"i": i, "t": now}}
                     for i in range(start, min(n, start + chunk))]  # fmt: skip
            self.app.enqueue_many(items)
        dt = time.perf_counter() - t0
        figure = "bulk" if chunk != n else "bulk_one_call"
        self.emit(figure, rep=rep, n=n, chunk=chunk, seconds=dt, rate=n / dt, stored=self.stored())

    def preload(self, n: int) -> None:
        chunk = self.sizes["chunk"]
        for start in range(0, n, chunk):
            now = time.time()
            self.app.enqueue_many([{"type": JOB_TYPE, "payload": {"i": i, "t": now}}
                                   for i in range(start, min(n, start + chunk))])  # fmt: skip

    def completed(self) -> int:
        row = self.admin.execute(
            "SELECT count(*) FROM nightcrew.jobs WHERE status = 'completed'"
        ).fetchone()
        return int(row[0]) if row else 0

    def drain(self, rep: int, cfg: DrainConfig, timeout: float) -> dict[str, Any]:
        n = self.sizes["drain"]
        self.reset()
        self.preload(n)
        self.admin.execute("CHECKPOINT")
        outdir = tempfile.mkdtemp(prefix="nc-drain-")
        t_spawn = time.time()
        procs = start_workers(self.url, cfg, outdir, self.limit_rate)
        status, t_done = "ok", float("nan")
        try:
            deadline = t_spawn + timeout
            while executed_count(outdir) < n and status == "ok":  # cheap local poll first
                if time.time() > deadline or not all(p.is_alive() for p in procs):
                    status = "timeout" if time.time() > deadline else "worker exited"
                time.sleep(0.02)
            while status == "ok":  # then until the jobs table says every job is completed
                done = self.completed()
                t_done = time.time()
                if done >= n:
                    break
                if t_done > deadline:
                    status = f"timeout (completed {done})"
                time.sleep(0.02)
        finally:
            stop_workers(procs)
        records = read_records(outdir)
        shutil.rmtree(outdir, ignore_errors=True)
        ids = [r[0] for r in records]
        t_first = min((r[2] for r in records), default=float("nan"))
        rec = dict(
            rep=rep, n=n, status=status, setup=cfg.describe(), config=asdict(cfg),
            executed=len(ids), unique=len(set(ids)), completed_rows=self.completed(),
            startup_s=t_first - t_spawn, seconds=t_done - t_first, rate=n / (t_done - t_first),
            limit_rate=self.limit_rate,
        )  # fmt: skip
        self.emit("drain" if rep else "drain_sweep", **rec)
        return rec

    def latency(self, rep: int, concurrency: int) -> None:
        n = self.sizes["latency"]
        self.reset()
        outdir = tempfile.mkdtemp(prefix="nc-lat-")
        cfg = DrainConfig(1, concurrency, 100, 500, 5.0)
        procs = start_workers(self.url, cfg, outdir)
        status = "ok"
        returned: dict[int, float] = {}  # job -> time the enqueue call returned
        try:
            self.app.enqueue(JOB_TYPE, {"i": WARMUP_ID, "t": time.time()})
            _wait(lambda: executed_count(outdir) >= 1, 60, "worker never ran the warm-up job")
            time.sleep(1.0)  # let the worker go idle
            t0 = time.time()
            for i in range(n):
                delay = t0 + i * LATENCY_INTERVAL - time.time()
                if delay > 0:
                    time.sleep(delay)
                t_enq = time.time()
                self.app.enqueue(JOB_TYPE, {"i": i, "t": t_enq})
                returned[i] = time.time()
            if not _wait(lambda: executed_count(outdir) >= n + 1, 60, None):
                status = "timeout"
        finally:
            stop_workers(procs)
        records = [r for r in read_records(outdir) if r[0] != WARMUP_ID]
        shutil.rmtree(outdir, ignore_errors=True)
        lat = sorted((ts - te) * 1000 for _, te, ts in records)
        # Split for diagnosis: the enqueue call itself, and pickup after it returned.
        enq = sorted((returned[i] - te) * 1000 for i, te, _ in records if i in returned)
        after = sorted((ts - returned[i]) * 1000 for i, _, ts in records if i in returned)
        self.emit("latency", rep=rep, n=n, received=len(lat), status=status,
                  p50=_pct(lat, 50), p95=_pct(lat, 95), p99=_pct(lat, 99),
                  max=lat[-1] if lat else None, enqueue_p50=_pct(enq, 50),
                  enqueue_p99=_pct(enq, 99), after_enqueue_p50=_pct(after, 50),
                  after_enqueue_p99=_pct(after, 99), setup=cfg.describe())  # fmt: skip


async def _never_called(ctx: Any, payload: Any) -> None:
    raise AssertionError("the client App never runs jobs")


def _wait(cond: Any, timeout: float, error: str | None) -> bool:
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            if error:
                raise RuntimeError(error)
            return False
        time.sleep(0.01)
    return True


def _pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile, the same formula as the peers' harness."""
    if not values:
        return None
    k = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
    return values[k]


# ---- setup and report ------------------------------------------------------------------------


def bench_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` if missing; migrate it."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not found:
            conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(server_url)
    params["dbname"] = name
    url = make_conninfo(**params)
    migrate(url)
    return url


def summary(runs: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in runs if r.get(key) is not None and r.get("status", "ok") == "ok"]
    if not values:
        return "n/a"
    fmt = "{:,.0f}" if key == "rate" else "{:.1f}"
    med = fmt.format(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


def report(bench: Bench) -> None:
    rows = []
    for figure, title in (("single", "single enqueue (jobs/s)"),
                          ("bulk", "bulk enqueue, calls of 1,000 (jobs/s)"),
                          ("bulk_one_call", "bulk enqueue, one call (jobs/s)"),
                          ("drain", "drain (jobs/s)")):  # fmt: skip
        if figure in bench.runs:
            extra = bench.runs[figure][0].get("setup", "")
            rows.append((title, summary(bench.runs[figure], "rate"), extra))
    if "latency" in bench.runs:
        lat = bench.runs["latency"]
        value = " / ".join(summary(lat, k) for k in ("p50", "p95", "p99"))
        rows.append(("pickup latency p50 / p95 / p99 (ms)", value, lat[0]["setup"]))
    width = max(len(r[0]) for r in rows) if rows else 10
    print("\nnightcrew — median [min–max]")
    for title, value, extra in rows:
        print(f"  {title:<{width}}  {value:<34} {extra}")
    for figure, runs in bench.runs.items():
        if figure == "drain_sweep":
            continue
        keys = ("p50", "p95", "p99") if figure == "latency" else ("rate",)
        med = {k: statistics.median([r[k] for r in runs if r.get(k) is not None] or [0])
               for k in keys}  # fmt: skip
        print(json.dumps({"figure": figure, "summary": True, "runs": len(runs), **med}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--only", default="single,bulk,drain,latency")
    ap.add_argument("--quick", action="store_true", help="smaller runs, 1 rep, 2 drain setups")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument(
        "--drain-config",
        action="append",
        metavar="P:CONC:FETCH:CBATCH:CINT_MS",
        help="worker setup to try (repeatable); the fastest is measured --reps times",
    )
    ap.add_argument("--drain-timeout", type=float, default=240.0)
    ap.add_argument("--latency-concurrency", type=int, default=10)
    ap.add_argument("--limit-rate", help="drain: hold every job to Limit('bench', rate=...)")
    a = ap.parse_args(argv)
    if not a.database_url:
        ap.error("give --database-url or set NIGHTCREW_DATABASE_URL")
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    if only - {"single", "bulk", "drain", "latency"}:
        ap.error(f"--only: unknown figures {sorted(only - {'single', 'bulk', 'drain', 'latency'})}")
    reps = a.reps or (1 if a.quick else 3)
    sizes = QUICK if a.quick else FULL
    specs = a.drain_config or (QUICK_DRAIN_CONFIGS if a.quick else DEFAULT_DRAIN_CONFIGS)
    configs = [DrainConfig.parse(s) for s in specs]
    try:
        url = bench_database(a.database_url, a.db_name)
    except psycopg.Error as exc:
        sys.exit(f"cannot prepare the benchmark database: {exc}")
    bench = Bench(url, sizes, a.limit_rate)
    try:
        if "single" in only:
            for r in range(1, reps + 1):
                bench.single(r)
        if "bulk" in only:
            for chunk in (sizes["chunk"], sizes["bulk"]):
                for r in range(1, reps + 1):
                    bench.bulk(r, chunk)
        if "drain" in only:
            best = configs[0]
            if len(configs) > 1:
                sweep = [(bench.drain(0, c, a.drain_timeout), c) for c in configs]
                ok = [(rec["rate"], c) for rec, c in sweep if rec["status"] == "ok"]
                best = max(ok, key=lambda x: x[0])[1] if ok else best
            for r in range(1, reps + 1):
                bench.drain(r, best, a.drain_timeout)
        if "latency" in only:
            for r in range(1, reps + 1):
                bench.latency(r, a.latency_concurrency)
    finally:
        with contextlib.suppress(Exception):
            bench.reset()
        bench.app.close()
    report(bench)


if __name__ == "__main__":
    main()
