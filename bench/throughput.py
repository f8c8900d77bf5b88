"""Throughput and pickup-latency benchmark of the nightcrew core engine on one PostgreSQL.

    python bench/throughput.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

It creates (if missing) and migrates a separate database on that server (``--db-name``,
default ``nightcrew_bench``) and empties its tables before every run. Figures:

* single  -- N ``app.enqueue`` calls one at a time from one client (jobs/s)
* async_single -- the same with ``await app.aenqueue`` from one task (as the peers' harness)
* concurrent -- N ``await app.aenqueue`` calls, one job per call, from ``--clients`` tasks
             on a pool of as many connections (``--client-procs`` processes share them)
* bulk    -- ``app.enqueue_many`` in calls of 1,000, and one call of all N (jobs/s)
* drain   -- N pre-enqueued no-op jobs, CHECKPOINT, worker process(es) spawned; rate =
             N / (all rows ``completed`` in the jobs table - first handler start);
             ``--limit-rate 1000/s`` holds every job to one keyed rate limit
* latency -- one idle worker; jobs enqueued one at a time 20 ms apart; handler-start
             ``time.time()`` minus ``time.time()`` just before the enqueue call (ms)

Each figure runs ``--reps`` times (median [min-max]); one JSON line per run and per figure.
With ``--pgqueuer-python`` (PgQueuer's own venv) PgQueuer runs the same figure right after
each nightcrew run, through ``bench/peers/pgqueuer_figures.py`` and the shared harness.
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
import subprocess
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
FULL = {
    "single": 5_000,
    "concurrent": 10_000,
    "bulk": 50_000,
    "chunk": 1_000,
    "drain": 20_000,
    "latency": 300,
}
QUICK = {
    "single": 1_000,
    "concurrent": 2_000,
    "bulk": 10_000,
    "chunk": 1_000,
    "drain": 5_000,
    "latency": 100,
}
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


def worker_process(
    url: str, cfg: DrainConfig, outdir: str, limit_rate: str | None = None, uvloop: bool = False
) -> None:
    """Entry point of a spawned worker process; runs until SIGTERM."""
    run_async(_worker(url, cfg, outdir, limit_rate), uvloop)


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
    url: str, cfg: DrainConfig, outdir: str, limit_rate: str | None = None, uvloop: bool = False
) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    args = (url, cfg, outdir, limit_rate, uvloop)
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


# ---- enqueue clients -----------------------------------------------------------------------


def client_app(url: str, pool_size: int) -> App:
    """An App that only enqueues, with a pool of ``pool_size`` connections."""
    app = App(url, migrate_on_start=False, pool_min_size=pool_size, pool_max_size=pool_size)
    app.job(JOB_TYPE, max_attempts=1)(_never_called)
    return app


async def enqueue_one_by_one(app: App, ids: range) -> None:
    """One task's share: ``await app.aenqueue`` per job, one after the other."""
    for i in ids:
        await app.aenqueue(JOB_TYPE, {"i": i, "t": time.time()})


def bulk_items(start: int, count: int) -> list[dict[str, Any]]:
    """The items of one bulk call (built inside the timing, as the peers' harness does)."""
    now = time.time()
    return [{"type": JOB_TYPE, "payload": {"i": i, "t": now}} for i in range(start, start + count)]


def run_async(coro: Any, uvloop: bool) -> Any:
    """Run ``coro`` on asyncio's loop, or on uvloop's (as under uvicorn when it is installed)."""
    if uvloop:
        import uvloop as _uvloop

        return _uvloop.run(coro)
    return asyncio.run(coro)


async def timed_enqueue_tasks(
    url: str, tasks: int, ids: range, start_at: float
) -> tuple[float, float]:
    """Warm a pool of ``tasks`` connections, wait until ``start_at`` (wall clock), then
    enqueue ``ids`` from ``tasks`` concurrent tasks; return the seconds from the start and
    the CPU seconds this process spent meanwhile."""
    app = client_app(url, tasks)
    pool = await app.apool()
    await pool.wait()  # every connection open before the clock starts
    await asyncio.gather(*(app.aenqueue(JOB_TYPE, {"i": WARMUP_ID, "t": 0}) for _ in range(tasks)))
    await asyncio.sleep(max(0.0, start_at - time.time()))
    start, cpu = time.time(), time.process_time()
    await asyncio.gather(*(enqueue_one_by_one(app, ids[k::tasks]) for k in range(tasks)))
    end, cpu = time.time(), time.process_time() - cpu
    await app.aclose()
    return end - start, cpu


def enqueue_process(url: str, tasks: int, ids: range, start_at: float, uvloop: bool,
                    ends: Any) -> None:  # fmt: skip
    """Entry point of a spawned client process of the concurrent figure."""
    seconds, cpu = run_async(timed_enqueue_tasks(url, tasks, ids, start_at), uvloop)
    ends.put((start_at + seconds, cpu))


def concurrent_in_processes(
    url: str, clients: int, procs: int, n: int, uvloop: bool
) -> tuple[float, float]:
    """``clients`` tasks spread over ``procs`` spawned processes; return the seconds taken
    from a common start (after every pool is warm) to the last process's end, and the CPU
    seconds of all of them."""
    ctx = multiprocessing.get_context("spawn")
    ends = ctx.Queue()
    start_at = time.time() + 3.0 + procs  # time to spawn, connect and warm every pool
    shares = [range(n)[k::procs] for k in range(procs)]
    workers = [ctx.Process(target=enqueue_process,
                           args=(url, clients // procs, share, start_at, uvloop, ends))
               for share in shares]  # fmt: skip
    for w in workers:
        w.start()
    finished = [ends.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    return max(end for end, _ in finished) - start_at, sum(cpu for _, cpu in finished)


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
        self.uvloop = False  # run the async client figures on uvloop
        self.worker_uvloop = False  # run the worker processes on uvloop

    def reset(self) -> None:
        self.admin.execute("TRUNCATE nightcrew.jobs, nightcrew.workers")
        if self.limit_rate is not None:  # (a schema before flow control has no such table)
            self.admin.execute("TRUNCATE nightcrew.limits, nightcrew.limit_reservations,"
                               " nightcrew.limit_slots")  # fmt: skip

    def settle(self) -> None:
        """``reset``, then a CHECKPOINT, as before the COPY ceiling (bench/floors.py): a bulk
        run that overlapped a timed checkpoint's writes while its floor did not would be
        measured against an easier machine. PgQueuer's bulk gets the same (suite.py)."""
        self.reset()
        self.admin.execute("CHECKPOINT")

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

    def async_single(self, rep: int) -> None:
        n = self.sizes["single"]

        async def run() -> float:
            app = client_app(self.url, 1)
            await app.aenqueue(JOB_TYPE, {"i": WARMUP_ID, "t": time.time()})  # pool warm-up
            self.reset()
            t0, cpu0 = time.perf_counter(), time.process_time()
            await enqueue_one_by_one(app, range(n))
            dt = time.perf_counter() - t0
            cpu.append(time.process_time() - cpu0)
            await app.aclose()
            return dt

        cpu: list[float] = []  # the client's CPU: steadier than the rate on a busy machine
        dt = run_async(run(), self.uvloop)
        self.emit(
            "async_single",
            cpu_us_per_job=1e6 * cpu[0] / n,
            rep=rep,
            n=n,
            seconds=dt,
            rate=n / dt,
            stored=self.stored(),
            uvloop=self.uvloop,
        )

    def concurrent(self, rep: int, clients: int, procs: int) -> None:
        n = self.sizes["concurrent"]
        self.reset()
        if procs <= 1:
            timed = timed_enqueue_tasks(self.url, clients, range(n), 0.0)
            dt, cpu = run_async(timed, self.uvloop)
        else:
            dt, cpu = concurrent_in_processes(self.url, clients, procs, n, self.uvloop)
        stored = self.stored() - clients  # less the warm-up jobs
        self.emit("concurrent", rep=rep, n=n, clients=clients, procs=procs, seconds=dt,
                  rate=n / dt, cpu_us_per_job=1e6 * cpu / n, stored=stored,
                  uvloop=self.uvloop)  # fmt: skip

    def bulk(self, rep: int, chunk: int) -> None:
        n = self.sizes["bulk"]
        self.settle()
        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            self.app.enqueue_many(bulk_items(start, min(chunk, n - start)))
        dt = time.perf_counter() - t0
        figure = "bulk" if chunk != n else "bulk_one_call"
        self.emit(figure, rep=rep, n=n, chunk=chunk, seconds=dt, rate=n / dt, stored=self.stored())

    def async_bulk(self, rep: int) -> None:
        """Calls of ``chunk`` through ``aenqueue_many``, as the peers' harness drives it."""
        n, chunk = self.sizes["bulk"], self.sizes["chunk"]

        async def run() -> float:
            app = client_app(self.url, 1)
            await app.apool()
            self.settle()
            t0 = time.perf_counter()
            for start in range(0, n, chunk):
                await app.aenqueue_many(bulk_items(start, min(chunk, n - start)))
            dt = time.perf_counter() - t0
            await app.aclose()
            return dt

        dt = run_async(run(), self.uvloop)
        self.emit("async_bulk", rep=rep, n=n, chunk=chunk, seconds=dt, rate=n / dt,
                  stored=self.stored())  # fmt: skip

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
        procs = start_workers(self.url, cfg, outdir, self.limit_rate, self.worker_uvloop)
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
        procs = start_workers(self.url, cfg, outdir, uvloop=self.worker_uvloop)
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


# ---- PgQueuer beside it ----------------------------------------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "bench-peers"))
PGQ_DEFAULT_PYTHON = "/tmp/peerbench/venv-pgqueuer/bin/python"
PGQ_VENV_HELP = (
    "python3 -m venv /tmp/peerbench/venv-pgqueuer && /tmp/peerbench/venv-pgqueuer/bin/pip "
    "install 'pgqueuer==1.6.0' asyncpg 'psycopg[binary]'"
)
# nightcrew figure -> the driver's figure; PgQueuer has no sync API, so no "single".
PGQ_FIGURES = {"async_single": "single", "concurrent": "concurrent", "async_bulk": "bulk",
               "drain": "drain", "latency": "latency"}  # fmt: skip
SIZE_OF = {"async_single": "single", "concurrent": "concurrent", "async_bulk": "bulk",
           "drain": "drain", "latency": "latency"}  # fmt: skip
PGQ_DRAIN = "2x50"  # 2 processes x batch_size 50: its fastest setup in the harness here


class PgQueuer:
    """Runs PgQueuer's figures in its own venv (``bench/peers/pgqueuer_figures.py``)."""

    def __init__(self, python: str, peers: str, server_url: str, clients: int) -> None:
        self.python, self.peers, self.clients = python, peers, clients
        self.port = int(conninfo_to_dict(server_url).get("port") or 5432)
        with psycopg.connect(server_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'pgqueuer'").fetchone():
                conn.execute("CREATE DATABASE pgqueuer")
        self.figure("install")

    @staticmethod
    def missing(python: str, peers: str) -> str | None:
        """Why PgQueuer cannot run here (with how to fix it), or None."""
        if not os.access(python, os.X_OK):
            return f"PgQueuer skipped: no venv at {python}; build it with:\n  {PGQ_VENV_HELP}"
        if not os.path.isfile(os.path.join(peers, "pgqueuer", "adapter.py")):
            return f"PgQueuer skipped: the peers' harness is not at {peers} (--peers DIR)"
        return None

    def figure(self, name: str, n: int | None = None) -> dict[str, Any] | None:
        """Run one figure once; its result record (None for ``install``)."""
        cmd = [self.python, os.path.join(HERE, "peers", "pgqueuer_figures.py"), name,
               "--harness", self.peers, "--port", str(self.port), "--clients", str(self.clients),
               "--drain", PGQ_DRAIN]  # fmt: skip
        if n is not None:
            cmd += ["--n", str(n)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise RuntimeError(f"PgQueuer {name} failed:\n{done.stderr[-2000:]}")
        lines = done.stdout.strip().splitlines()
        return dict(json.loads(lines[-1])) if lines else None


def run_pgqueuer(bench: Bench, peer: PgQueuer | None, figure: str, rep: int) -> None:
    """PgQueuer's run of ``figure`` right after nightcrew's (interleaved rounds)."""
    if peer is None or figure not in PGQ_FIGURES:
        return
    if figure in ("bulk", "async_bulk"):
        bench.admin.execute("CHECKPOINT")  # as before ours and the COPY ceiling
    rec = peer.figure(PGQ_FIGURES[figure], bench.sizes[SIZE_OF[figure]]) or {}
    keep = {k: rec.get(k) for k in ("n", "rate", "p50", "p95", "p99", "setup", "stored")}
    keep["status"] = rec.get("status") or "ok"  # the harness's A and B have no status
    bench.emit(f"pgqueuer.{figure}", rep=rep, **keep)


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
                          ("async_single", "single enqueue, async (jobs/s)"),
                          ("pgqueuer.async_single", "PgQueuer single enqueue (jobs/s)"),
                          ("concurrent", "concurrent enqueue, one job per call (jobs/s)"),
                          ("pgqueuer.concurrent", "PgQueuer concurrent enqueue (jobs/s)"),
                          ("bulk", "bulk enqueue, calls of 1,000 (jobs/s)"),
                          ("async_bulk", "bulk enqueue, async, calls of 1,000 (jobs/s)"),
                          ("pgqueuer.async_bulk", "PgQueuer bulk, calls of 1,000 (jobs/s)"),
                          ("bulk_one_call", "bulk enqueue, one call (jobs/s)"),
                          ("drain", "drain (jobs/s)"),
                          ("pgqueuer.drain", "PgQueuer drain (jobs/s)")):  # fmt: skip
        if figure in bench.runs:
            extra = bench.runs[figure][0].get("setup") or ""
            rows.append((title, summary(bench.runs[figure], "rate"), extra))
    latencies = (("latency", "pickup latency p50 / p95 / p99 (ms)"),
                 ("pgqueuer.latency", "PgQueuer pickup p50 / p95 / p99 (ms)"))  # fmt: skip
    for figure, title in latencies:
        if figure in bench.runs:
            lat = bench.runs[figure]
            value = " / ".join(summary(lat, k) for k in ("p50", "p95", "p99"))
            rows.append((title, value, lat[0].get("setup") or ""))
    width = max(len(r[0]) for r in rows) if rows else 10
    print("\nnightcrew — median [min–max]")
    for title, value, extra in rows:
        print(f"  {title:<{width}}  {value:<34} {extra}")
    for figure, runs in bench.runs.items():
        if figure == "drain_sweep":
            continue
        keys = ("p50", "p95", "p99") if figure.endswith("latency") else ("rate",)
        med = {k: statistics.median([r[k] for r in runs if r.get(k) is not None] or [0])
               for k in keys}  # fmt: skip
        print(json.dumps({"figure": figure, "summary": True, "runs": len(runs), **med}))


FIGURES = ("single", "async_single", "concurrent", "bulk", "async_bulk", "drain", "latency")


def pgqueuer_or_none(
    python: str | None, peers: str, server_url: str, clients: int
) -> PgQueuer | None:
    """PgQueuer's runner when asked for and installed; else say why it is skipped."""
    if python is None:
        return None
    why = PgQueuer.missing(python, peers)
    if why:
        print(why, file=sys.stderr, flush=True)
        return None
    return PgQueuer(python, peers, server_url, clients)


def best_drain_config(bench: Bench, configs: list[DrainConfig], timeout: float) -> DrainConfig:
    """One run of every setup; the fastest (the first when there is only one)."""
    if len(configs) == 1:
        return configs[0]
    sweep = [(bench.drain(0, c, timeout), c) for c in configs]
    ok = [(rec["rate"], c) for rec, c in sweep if rec["status"] == "ok"]
    return max(ok, key=lambda x: x[0])[1] if ok else configs[0]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--only", default=",".join(FIGURES))
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
    ap.add_argument("--clients", type=int, default=32, help="tasks of the concurrent figure")
    ap.add_argument("--client-procs", type=int, default=1, help="processes sharing --clients")
    ap.add_argument("--uvloop", action="store_true", help="async client figures on uvloop")
    ap.add_argument("--worker-uvloop", action="store_true", help="worker processes on uvloop")
    ap.add_argument("--pgqueuer-python", default=None, help="PgQueuer's venv python: run it too")
    ap.add_argument("--peers", default=PEERS, help="the shared harness (../shared/bench-peers)")
    a = ap.parse_args(argv)
    if not a.database_url:
        ap.error("give --database-url or set NIGHTCREW_DATABASE_URL")
    only = {x.strip() for x in a.only.split(",") if x.strip()}
    if only - set(FIGURES):
        ap.error(f"--only: unknown figures {sorted(only - set(FIGURES))}; known: {FIGURES}")
    reps = a.reps or (1 if a.quick else 3)
    sizes = QUICK if a.quick else FULL
    specs = a.drain_config or (QUICK_DRAIN_CONFIGS if a.quick else DEFAULT_DRAIN_CONFIGS)
    configs = [DrainConfig.parse(s) for s in specs]
    try:
        url = bench_database(a.database_url, a.db_name)
    except psycopg.Error as exc:
        sys.exit(f"cannot prepare the benchmark database: {exc}")
    peer = pgqueuer_or_none(a.pgqueuer_python, a.peers, a.database_url, a.clients)
    bench = Bench(url, sizes, a.limit_rate)
    bench.uvloop, bench.worker_uvloop = a.uvloop, a.worker_uvloop
    runs: dict[str, Any] = {
        "single": bench.single,
        "async_single": bench.async_single,
        "concurrent": lambda r: bench.concurrent(r, a.clients, a.client_procs),
        "bulk": lambda r: (bench.bulk(r, sizes["chunk"]), bench.bulk(r, sizes["bulk"])),
        "async_bulk": bench.async_bulk,
        "latency": lambda r: bench.latency(r, a.latency_concurrency),
    }
    try:
        for figure in (f for f in FIGURES if f in only):
            if figure == "drain":
                best = best_drain_config(bench, configs, a.drain_timeout)
                runs["drain"] = lambda r, best=best: bench.drain(r, best, a.drain_timeout)
            for r in range(1, reps + 1):
                runs[figure](r)
                run_pgqueuer(bench, peer, figure, r)
    finally:
        with contextlib.suppress(Exception):
            bench.reset()
        bench.app.close()
    report(bench)


if __name__ == "__main__":
    main()
