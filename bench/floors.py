"""What the machine allows: the database-side floors under nightcrew's throughput figures.

    python bench/floors.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Measures, on the same server and database as ``bench/throughput.py`` (``nightcrew_bench``,
created and migrated if missing), what no client library can beat on this machine:

* copy_ceiling  -- 50 transactions of one COPY of 1,000 pre-encoded rows (the columns
                   ``enqueue_many`` streams) into ``nightcrew.jobs``, then into a bare copy
                   of it without indexes: rows/s with no Python encoding in the timing.
* python_copy_floor -- the same 50 COPYs from psycopg's async API, each call first building
                   the 1,000 items the bulk figure passes (``{"type", "payload"}`` dicts, as
                   ``bench/throughput.py``'s ``async_bulk`` builds them) and then writing the
                   pre-encoded rows, in its own transaction: what any Python library that is
                   handed those dicts can reach, even with validation and encoding for free.
* insert_floor  -- pgbench (a C client), one connection, prepared, durable commit per row:
                   a narrow table (bigserial, jsonb) and ``nightcrew.jobs`` with the columns
                   of a single enqueue (ids from gen_random_uuid()). rows/s.
* insert_floor_32 -- the same into ``nightcrew.jobs`` from 32 pgbench connections: the
                   floor of concurrent single enqueue (32 clients, one job per commit).
* insert_notify_floor_32 -- the same, each insert followed by its wake-up NOTIFY as its own
                   transaction (what a single enqueue does): the floor with the wake-up.
* drain_floor   -- pgbench, 2 connections (as the drain's 2 worker processes), each
                   transaction the worker's own statements with no Python in between:
                   ``fetch_jobs.sql`` leasing 500 jobs, then ``finish_jobs.sql`` completing
                   them (its outcomes built in SQL from the rows this connection holds), each
                   its own durable commit, until 20,000 preloaded jobs are completed and kept.
                   jobs/s: the database's share of the drain.
* python_drain_floor -- the same statements from 2 Python processes (psycopg, prepared, one
                   connection each), each taking its 500 leased rows into Python and sending
                   their outcomes back as one JSON array: the most a Python worker of psycopg
                   can drain this way on this machine, with no nightcrew code. jobs/s.
* python_drain_floor_tasks -- the same, each leased job also running a no-op coroutine as
                   its own asyncio task (a batch's awaited before its outcomes go): what a
                   worker whose jobs run side by side adds at the least. jobs/s.
* psycopg_async_floor / asyncpg_floor -- ``bench/client_floor.py``: the cheapest 1-client
                   async enqueue a Python driver allows, the job row and its NOTIFY in one
                   prepared autocommit statement, back to back from one task: with psycopg
                   (nightcrew's driver, this venv) and asyncpg (PgQueuer's, in PgQueuer's venv
                   when ``--pgqueuer-python`` exists). jobs/s and the client's CPU per job.
* psycopg_async_floor_32 / asyncpg_floor_32 -- the same from 32 tasks of one process, each
                   on its own connection, sending the job row alone (concurrent enqueues may
                   share their wake-ups): the most a single-process Python client of each
                   driver can enqueue one job per commit, the floor of the 32-client figure.
* python_pickup_floor -- idle pickup with no nightcrew code: 300 jobs at 50 Hz, each
                   inserted with its NOTIFY (one durable commit, sync psycopg, prepared);
                   a listening process (async psycopg) leases the notified job by its id
                   (a second durable commit). p50/p95/p99 ms from the insert's call to the
                   lease's return: what any Python queue of psycopg pays for a pickup.
* two_commits   -- pgbench at 50 Hz: insert a job, then lease it as the fetch does (same
                   SET list, so the update triggers run), each its own durable commit: the
                   floor of idle pickup latency without NOTIFY or Python. p50/p95/p99 ms.

The pgbench figures are skipped when ``pgbench`` is not on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import psycopg

from nightcrew.ids import uuid7, uuid7_ints

# bench/ is the script's directory
from throughput import _pct, bench_database, bulk_items, run_async

CHUNKS, CHUNK_ROWS = 50, 1_000
STREAMED = "(id, payload, type, queue, priority, max_attempts, timeout_seconds, notify, user_id)"
COPY_JOBS = f"COPY nightcrew.jobs {STREAMED} FROM STDIN"
BARE = "public.nightcrew_floor_bare"
NARROW = "public.nightcrew_floor_narrow"
INSERT_JOB = (
    "INSERT INTO nightcrew.jobs (id, type, queue, payload, priority, run_at, max_attempts)"
    " VALUES (gen_random_uuid(), 'bench.noop', 'default', '{\"i\": 1}', 0, now(), 1)"
)
# python_pickup_floor: a single enqueue's row with its wake-up in the statement; the payload
# names the job and its index (the lessee leases the one and records the other).
PICKUP_CHANNEL, PICKUP_JOBS = "nightcrew_floor_pickup", 300
INSERT_PICKUP_JOB = INSERT_JOB.replace("gen_random_uuid()", "%s") + (
    f" RETURNING pg_notify('{PICKUP_CHANNEL}', id::text || ':' || %s)"
)
# A wake-up sent as its own transaction after the insert's commit, as a single enqueue does.
NOTIFY_AFTER = "SELECT pg_notify('nightcrew_jobs', 'default')"
LEASE_JOB = (
    "UPDATE nightcrew.jobs SET status = 'processing', attempts = attempts + 1,"
    " worker_id = 'floor', lease_expires_at = now() + interval '30 s',"
    " started_at = now(), updated_at = now() WHERE id = :jid"
)


DRAIN_JOBS, DRAIN_BATCH, DRAIN_CLIENTS = 20_000, 500, 2


def drain_script() -> str:
    """pgbench's transaction: the worker's fetch, then its completion of what it holds."""
    me = "'floor' || :client_id"
    fetch = (
        query_text("fetch_jobs")
        .replace("%(queues)s", "'{default}'").replace("%(limit)s", str(DRAIN_BATCH))
        .replace("%(worker_id)s", me).replace("%(lease_seconds)s", "60")
        .replace("%(exclude)s", "'{}'").replace("%(now)s", "NULL::timestamptz")
    )  # fmt: skip
    outcomes = (
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'attempt', attempts,"
        " 'status', 'completed')), '[]') FROM nightcrew.jobs"
        f" WHERE status = 'processing' AND worker_id = {me})"
    )
    finish = (
        query_text("finish_jobs").replace("%(worker_id)s", me).replace("%(outcomes)s", outcomes)
    )
    return f"{one_line(fetch)};\n{one_line(finish)};\n"


def query_text(name: str) -> str:
    from nightcrew.queries import query

    return query(name).as_string(None)


def one_line(sql: str) -> str:
    """pgbench reads one statement per line: drop comments, join the lines."""
    return " ".join(line.split("--")[0].strip() for line in sql.splitlines()).strip()


def preload_drain(conn: psycopg.Connection[Any]) -> None:
    """The drain floors' 20,000 pending jobs, by COPY, vacuumed and checkpointed."""
    conn.execute("TRUNCATE nightcrew.jobs")
    for chunk in encoded_chunks()[: DRAIN_JOBS // CHUNK_ROWS]:
        with conn.transaction(), conn.cursor().copy(COPY_JOBS) as c:
            c.write(chunk)
    conn.execute("VACUUM ANALYZE nightcrew.jobs")
    conn.execute("CHECKPOINT")


def drained(conn: psycopg.Connection[Any], figure: str, seconds: float) -> dict[str, Any]:
    row = conn.execute("SELECT count(*) FROM nightcrew.jobs WHERE status = 'completed'").fetchone()
    completed = int(row[0]) if row else 0
    conn.execute("TRUNCATE nightcrew.jobs")
    return emit(figure, table="nightcrew.jobs", clients=DRAIN_CLIENTS, completed=completed,
                seconds=seconds, rate=completed / seconds)  # fmt: skip


def drain_floor(url: str, conn: psycopg.Connection[Any]) -> dict[str, Any]:
    preload_drain(conn)
    per_client = DRAIN_JOBS // DRAIN_BATCH // DRAIN_CLIENTS
    t0 = time.perf_counter()
    pgbench(url, drain_script(), "-t", str(per_client), clients=DRAIN_CLIENTS)
    return drained(conn, "drain_floor", time.perf_counter() - t0)


def python_drain_floor(
    url: str, conn: psycopg.Connection[Any], tasks: bool = False
) -> dict[str, Any]:
    """``drain_floor``'s statements from 2 Python processes (psycopg, prepared), each taking
    its leased rows into Python and sending their outcomes back as JSON, as any Python
    worker must; no nightcrew code between the statements.

    ``tasks``: each leased job also runs a no-op coroutine as its own asyncio task, all of
    a batch's awaited before its outcomes are sent (``python_drain_floor_tasks``): what a
    worker whose jobs run side by side, each able to wait on I/O, adds at the least."""
    preload_drain(conn)
    ctx = multiprocessing.get_context("spawn")
    ends = ctx.Queue()
    start_at = time.time() + 3.0  # time to spawn and connect
    procs = [ctx.Process(target=python_drainer, args=(url, f"pyfloor{k}", start_at, ends, tasks))
             for k in range(DRAIN_CLIENTS)]  # fmt: skip
    for p in procs:
        p.start()
    last = max(ends.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(15)
    figure = "python_drain_floor_tasks" if tasks else "python_drain_floor"
    return drained(conn, figure, last - start_at)


def python_drainer(url: str, worker_id: str, start_at: float, ends: Any, tasks: bool) -> None:
    """Entry point of one process of :func:`python_drain_floor`."""
    ends.put(asyncio.run(_drain_from_python(url, worker_id, start_at, tasks)))


async def _no_op_job(job_id: Any) -> None:
    return None


async def _drain_from_python(url: str, worker_id: str, start_at: float, tasks: bool) -> float:
    from nightcrew.queries import query

    fetch, finish = query("fetch_jobs"), query("finish_jobs")
    leasing = {"queues": ["default"], "limit": DRAIN_BATCH, "worker_id": worker_id,
               "lease_seconds": 60, "exclude": [], "now": None}  # fmt: skip
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        while rows := await (await conn.execute(fetch, leasing, prepare=True)).fetchall():
            if tasks:
                await asyncio.gather(*[asyncio.create_task(_no_op_job(r[0])) for r in rows])
            outcomes = [{"id": str(r[0]), "attempt": r[5], "status": "completed"} for r in rows]
            finishing = {"worker_id": worker_id, "outcomes": json.dumps(outcomes)}
            await conn.execute(finish, finishing, prepare=True)
    return time.time()


def emit(figure: str, **rec: Any) -> dict[str, Any]:
    rec = {"figure": figure, **rec, "load1": os.getloadavg()[0]}
    print(json.dumps(rec), flush=True)
    return rec


def encoded_chunks() -> list[bytes]:
    now = time.time()
    chunks = []
    for _ in range(CHUNKS):
        ids = uuid7_ints(CHUNK_ROWS)
        rows = (
            f'{v:032x}\t{{"i": {i}, "t": {now}}}\tbench.noop\tdefault\t0\t1\t\\N\t\\N\t\\N\n'
            for i, v in enumerate(ids)
        )
        chunks.append("".join(rows).encode())
    return chunks


def settle(conn: psycopg.Connection[Any], table: str = "nightcrew.jobs") -> None:
    """Empty ``table`` and CHECKPOINT: every bulk run starts from here (no timed checkpoint's
    writes in its timing, and none of the previous run's dirty pages)."""
    conn.execute(f"TRUNCATE {table}")
    conn.execute("CHECKPOINT")


def copy_ceiling(conn: psycopg.Connection[Any], table: str, reps: int) -> dict[str, Any]:
    rates = []
    for _ in range(reps):
        chunks = encoded_chunks()  # fresh ids: the primary key refuses repeats
        settle(conn, table)
        t0 = time.perf_counter()
        for chunk in chunks:
            with conn.transaction(), conn.cursor().copy(f"COPY {table} {STREAMED} FROM STDIN") as c:
                c.write(chunk)
        rates.append(CHUNKS * CHUNK_ROWS / (time.perf_counter() - t0))
    return emit("copy_ceiling", table=table, rate=statistics.median(rates), runs=rates)


COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), check_circular=False, allow_nan=False)
"""The standard library's cheapest JSON encoder: compact, no circular-reference markers
(0.73 us a ``{"i", "t"}`` payload here, against 0.82 for ``json.dumps``; nightcrew's own
encoder is as fast)."""


def python_copy_floor(url: str, uvloop: bool = False, encode: bool = False) -> dict[str, Any]:
    """``copy_ceiling``'s 50 transactions from one async psycopg connection, each call building
    the bulk figure's 1,000 items first (the caller's work, in that figure's timing too, with
    this process's garbage collector) and then writing pre-encoded rows: no validation, no
    encoding, no wake-up, so the most generous floor of a Python library's bulk enqueue.

    ``encode``: each call also turns the items' payloads into JSON text, as any library must
    before writing them, the cheapest way the standard library offers: one call for the 1,000
    (:data:`COMPACT_JSON`) (``python_copy_floor_encoded``). The rows written are the same
    pre-encoded ones: only the encoding's cost is added, not its use."""
    chunks = encoded_chunks()
    with psycopg.connect(url, autocommit=True) as conn:
        settle(conn)
    seconds = run_async(_copy_from_python(url, chunks, encode), uvloop)
    figure = "python_copy_floor_encoded" if encode else "python_copy_floor"
    return emit(figure, table="nightcrew.jobs", rate=CHUNKS * CHUNK_ROWS / seconds)


async def _copy_from_python(url: str, chunks: list[bytes], encode: bool) -> float:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        t0 = time.perf_counter()
        for start, chunk in zip(range(0, CHUNKS * CHUNK_ROWS, CHUNK_ROWS), chunks, strict=True):
            items = bulk_items(start, CHUNK_ROWS)
            payloads = COMPACT_JSON.encode([item["payload"] for item in items]) if encode else None
            async with conn.transaction(), conn.cursor().copy(COPY_JOBS) as c:
                await c.write(chunk)
            del items, payloads  # held through the call, as a library holds its argument
        return time.perf_counter() - t0


def pgbench(
    url: str, script: str, *args: str, clients: int = 1
) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(script)
    try:
        threads = ["-j", str(min(clients, os.cpu_count() or 1))]
        cmd = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), *threads, *args,
               "-f", f.name, url]  # fmt: skip
        return subprocess.run(cmd, capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)


def insert_floor(
    url: str, table: str, sql: str, seconds: int, clients: int = 1, figure: str | None = None
) -> dict[str, Any]:
    """pgbench's durable single-row inserts/s from ``clients`` connections (prepared)."""
    out = pgbench(url, sql + ";\n", "-T", str(seconds), clients=clients).stdout
    tps = next(float(w.split("=")[1].split()[0]) for w in out.splitlines() if "tps =" in w)
    figure = figure or ("insert_floor" if clients == 1 else f"insert_floor_{clients}")
    return emit(figure, table=table, clients=clients, rate=tps)


def insert_notify_floor(url: str, seconds: int, clients: int) -> dict[str, Any]:
    """The same inserts, each followed by its wake-up NOTIFY in a transaction of its own."""
    script = f"{INSERT_JOB};\n{NOTIFY_AFTER}"
    return insert_floor(url, "nightcrew.jobs", script, seconds, clients,
                        figure=f"insert_notify_floor_{clients}")  # fmt: skip


CLIENT_FLOOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "client_floor.py")


def client_floor(python: str, driver: str, url: str, n: int, clients: int = 1
                 ) -> dict[str, Any]:  # fmt: skip
    """``client_floor.py`` for ``driver`` under ``python`` (a venv that has the driver)."""
    out = subprocess.run([python, CLIENT_FLOOR, "--driver", driver, "--url", url, "--n", str(n),
                          "--clients", str(clients)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    rec = json.loads(out.splitlines()[-1])
    figure = f"{driver}_async_floor" if driver == "psycopg" else "asyncpg_floor"
    return emit(figure if clients == 1 else f"{figure}_{clients}", **rec)


def client_floors(url: str, asyncpg_python: str | None, n: int, asyncpg_first: bool = False,
                  clients: int = 1) -> list[dict[str, Any]]:  # fmt: skip
    """The psycopg floor, and asyncpg's beside it when its venv exists (order as asked)."""
    runs = [(sys.executable, "psycopg")]
    if asyncpg_python and os.path.exists(asyncpg_python):
        runs.insert(0 if asyncpg_first else 1, (asyncpg_python, "asyncpg"))
    return [client_floor(python, driver, url, n, clients) for python, driver in runs]


def python_pickup_floor(url: str, interval: float = 0.02) -> dict[str, Any]:
    """``two_commits`` from Python with the wake-up between them: a sync psycopg client
    inserts each job with its NOTIFY (as the enqueue does); a spawned process listening on
    async psycopg leases the notified job by id (the cheapest fetch) and notes the time."""
    ctx = multiprocessing.get_context("spawn")
    ready, leased = ctx.Queue(), ctx.Queue()
    lessee = ctx.Process(target=pickup_lessee, args=(url, ready, leased))
    lessee.start()
    insert = INSERT_PICKUP_JOB.encode()
    called: list[float] = []
    try:
        ready.get(timeout=60)
        with psycopg.connect(url, autocommit=True, prepare_threshold=0) as conn:
            start = time.time()
            for i in range(PICKUP_JOBS):
                if (delay := start + i * interval - time.time()) > 0:
                    time.sleep(delay)
                called.append(time.time())
                conn.execute(insert, (uuid7(), str(i)))
        done = leased.get(timeout=60)
    finally:
        lessee.join(10)
        if lessee.is_alive():
            lessee.kill()
    lat = sorted((done[i] - called[i]) * 1000 for i in range(PICKUP_JOBS))
    return emit("python_pickup_floor", n=len(lat), p50=_pct(lat, 50), p95=_pct(lat, 95),
                p99=_pct(lat, 99), max=lat[-1])  # fmt: skip


def pickup_lessee(url: str, ready: Any, leased: Any) -> None:
    """Entry point of :func:`python_pickup_floor`'s listening process."""
    leased.put(asyncio.run(_lease_notified(url, ready)))


async def _lease_notified(url: str, ready: Any) -> dict[int, float]:
    lease = LEASE_JOB.replace(":jid", "%s::uuid").encode()
    done: dict[int, float] = {}
    async with (
        await psycopg.AsyncConnection.connect(url, autocommit=True) as listening,
        await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=0) as conn,
    ):
        await listening.execute(f"LISTEN {PICKUP_CHANNEL}")
        ready.put(True)
        async for note in listening.notifies():
            job, index = note.payload.split(":")
            await conn.execute(lease, (job,))
            done[int(index)] = time.time()
            if len(done) == PICKUP_JOBS:
                break
    return done


def two_commits(url: str, seconds: int) -> dict[str, Any]:
    script = f"{INSERT_JOB} RETURNING id AS jid \\gset\n{LEASE_JOB};\n"
    logdir = tempfile.mkdtemp(prefix="nc-floor-")
    try:
        pgbench(url, script, "-R", "50", "-T", str(seconds), "-l", "--log-prefix",
                os.path.join(logdir, "log"))  # fmt: skip
        lat = []
        for name in os.listdir(logdir):
            with open(os.path.join(logdir, name)) as f:
                lat += [int(line.split()[2]) / 1000 for line in f]  # microseconds -> ms
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    lat.sort()
    return emit("two_commits", n=len(lat), p50=_pct(lat, 50), p95=_pct(lat, 95),
                p99=_pct(lat, 99), max=lat[-1] if lat else None)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10, help="length of each pgbench run")
    ap.add_argument("--pgqueuer-python", default="/tmp/peerbench/venv-pgqueuer/bin/python",
                    help="a venv with asyncpg, for asyncpg's client floor")  # fmt: skip
    args = ap.parse_args(argv)
    if not args.database_url:
        ap.error("--database-url (or NIGHTCREW_DATABASE_URL) names the server to measure")
    url = bench_database(args.database_url, args.db_name)
    results: list[dict[str, Any]] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {BARE}, {NARROW}")
        conn.execute(f"CREATE TABLE {BARE} (LIKE nightcrew.jobs INCLUDING DEFAULTS)")
        conn.execute(f"CREATE TABLE {NARROW} (id bigserial PRIMARY KEY, payload jsonb)")
        try:
            results.append(copy_ceiling(conn, "nightcrew.jobs", args.reps))
            results.append(copy_ceiling(conn, BARE, args.reps))
            results.append(python_copy_floor(url))
            results.append(python_copy_floor(url, encode=True))
            conn.execute("TRUNCATE nightcrew.jobs")
            results += client_floors(url, args.pgqueuer_python, 3000)
            results += client_floors(url, args.pgqueuer_python, 10_000, clients=32)
            if shutil.which("pgbench") is None:
                print("pgbench not on PATH: insert_floor and two_commits skipped", file=sys.stderr)
            else:
                conn.execute("TRUNCATE nightcrew.jobs")
                sql = f"INSERT INTO {NARROW} (payload) VALUES ('{{\"i\": 1}}')"
                results.append(insert_floor(url, NARROW, sql, args.seconds))
                results.append(insert_floor(url, "nightcrew.jobs", INSERT_JOB, args.seconds))
                conn.execute("TRUNCATE nightcrew.jobs")
                results.append(
                    insert_floor(url, "nightcrew.jobs", INSERT_JOB, args.seconds, clients=32)
                )
                conn.execute("TRUNCATE nightcrew.jobs")
                results.append(insert_notify_floor(url, args.seconds, 32))
                conn.execute("TRUNCATE nightcrew.jobs")
                results.append(two_commits(url, args.seconds))
                results.append(drain_floor(url, conn))
            results.append(python_drain_floor(url, conn))
            results.append(python_drain_floor(url, conn, tasks=True))
            conn.execute("TRUNCATE nightcrew.jobs")
            results.append(python_pickup_floor(url))
        finally:
            conn.execute(f"DROP TABLE IF EXISTS {BARE}, {NARROW}")
            conn.execute("TRUNCATE nightcrew.jobs")
    print("\nfloors (pgbench, or Python without nightcrew; fsync, synchronous_commit as set)")
    for r in results:
        if "driver" in r:
            who = f"{r['figure']} ({r['clients']} clients)"
            print(f"  {who:42s} {r['rate']:,.0f} jobs/s, "
                  f"client CPU {r['cpu_us_per_job']:.0f} us/job")  # fmt: skip
        elif r["figure"] in ("two_commits", "python_pickup_floor"):
            print(f"  {r['figure'] + ' at 50 Hz (ms)':42s} p50 {r['p50']:.2f} / p95 {r['p95']:.2f}"
                  f" / p99 {r['p99']:.2f}")  # fmt: skip
        else:
            print(f"  {r['figure'] + ' ' + r['table']:42s} {r['rate']:,.0f} rows/s")


if __name__ == "__main__":
    main()
