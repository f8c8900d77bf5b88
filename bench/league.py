"""League statistics refresh on the demo league (docs/league.md): one run's wall time with
the ten functions in parallel against the same ten in sequence, queue latency, cache
invalidation latency across web processes, and the enqueue endpoint under 50 clients.

    python bench/league.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Recreates the database ``--db-name`` (default ``league_bench``) on that server, migrates
it, loads the demo league (10 seasons, 40 players, a match a week), then starts real
processes: ``--web`` web processes (``nightcrew serve --app league.app:app``, ports from
``--port``) and one worker process (``nightcrew worker``, concurrency
``--worker-concurrency``, 12). Figures:

- ``sequential_ms``: the ten functions one after the other in one transaction (median of 3);
- ``run_ms``: a run's wall time, first function started to run completed (ten parallel jobs
  + the dependent invalidation), over ``--runs`` runs asked for one after the other;
- ``queue_latency_ms``: run created (the trigger's transaction) to its first function
  started;
- ``invalidation_ms``: last function ended to the last web process having dropped the tags;
- ``enqueue_ms``: ``POST /api/league/stats-jobs`` latency at ``--clients`` concurrent
  clients, each sending ``--requests`` requests at ``--rate`` per second from a random
  start (an open workload, like bench/http_load.py; ``--rate 0``: back to back, which
  measures queueing in front of saturated servers), spread over the web processes; most
  join the waiting run. ``--burst`` sends every client's requests in lock-step instead
  (all 50 at the same instant each second), the worst case a real league never sees;
- ``enqueue_waits`` (``--sample-waits``): ``pg_stat_activity`` of the bench database
  sampled every 20 ms during the enqueue load, non-idle backends counted by process
  (``web``, ``worker``: set through ``PGAPPNAME``), wait event (``CPU`` when none),
  statement, and for a lock wait what the blocking backend is doing: load-independent
  evidence of what an enqueue waits on.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

# Run as a script, this file's folder comes first on sys.path, and this file is named like
# the league package it measures: drop the folder so that ``import league`` finds the app.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from league.app import build_app  # noqa: E402
from league.demo_data import DemoSize, load_demo  # noqa: E402
from league.stats import refresh_all  # noqa: E402
from nightcrew import create_api_key  # noqa: E402

DATABASE = "league_bench"
REPO = Path(__file__).resolve().parents[1]
SETTINGS = {
    "NIGHTCREW_MIGRATE_ON_START": "false",
    "NIGHTCREW_POLL_SECONDS": "0.2",
    "NIGHTCREW_WEBHOOK_SECRET": "whsec_bench",
}


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 1)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": round(max(values), 1),
        "n": len(values),
    }


def recreate(server: str, name: str) -> str:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(server, dbname=name)


def start(args: list[str], url: str, log: Path, role: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTCREW_")}
    # libpq names every connection of the process after its role (the wait samples).
    env.update(SETTINGS, NIGHTCREW_DATABASE_URL=url, PGAPPNAME=role)
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "nightcrew", *args, "--app", "league.app:app"],
        cwd=REPO,
        env=env,
        stdout=out,
        stderr=out,
    )
    out.close()
    return proc


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.005)


async def sequential_ms(url: str) -> float:
    times = []
    async with await psycopg.AsyncConnection.connect(url) as conn:
        for _ in range(3):
            started = time.perf_counter()
            async with conn.transaction():
                await refresh_all(conn)
            times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


async def one_run(http: httpx.AsyncClient, webs: list[str], url: str, n: int) -> dict[str, float]:
    answer = await http.post(
        f"{webs[0]}/api/league/stats-jobs", json={"triggeredBy": "admin", "requestId": f"bench-{n}"}
    )
    run_id = answer.json()["jobId"]

    async def invalidated_everywhere() -> bool:
        for web in webs:
            last = (await http.get(f"{web}/api/league/cache")).json()["lastInvalidation"]
            if not last or last["runId"] != run_id:
                return False
        return True

    await wait_for(invalidated_everywhere, 60, f"run {run_id}")
    received = [
        (await http.get(f"{web}/api/league/cache")).json()["lastInvalidation"]["receivedAt"]
        for web in webs
    ]
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT r.status, extract(epoch FROM r.completed_at - r.started_at) * 1000,"
            " extract(epoch FROM min(f.started_at) - r.created_at) * 1000,"
            " extract(epoch FROM max(f.ended_at)) FROM league.runs r"
            " JOIN league.run_functions f ON f.run_id = r.id WHERE r.id = %s GROUP BY r.id",
            (run_id,),
        )
        row = await cur.fetchone()
    assert row is not None and row[0] == "completed", row
    return {
        "run_ms": float(row[1]),
        "queue_latency_ms": float(row[2]),
        "invalidation_ms": (max(received) - float(row[3])) * 1000,
    }


async def enqueue_load(
    webs: list[str], key: str, clients: int, requests: int, rate: float, burst: bool = False
) -> list[float]:
    latencies: list[float] = []
    period = 1 / rate if rate > 0 else 0.0
    # Every client is built before the clock starts: httpx loads the CA bundle for each
    # new client (an SSL context, ~10-50 ms of blocked event loop, even for http://), which
    # inside the timed loop stalled the other clients' requests and counted as their latency.
    auth = {"Authorization": f"Bearer {key}"}
    https = [httpx.AsyncClient(headers=auth, timeout=30) for _ in range(clients)]
    first_at = time.perf_counter() + 0.5

    async def client(index: int) -> None:
        base = webs[index % len(webs)]
        async with https[index] as http:
            if burst:  # every client on the same tick: lock-step bursts
                next_at = first_at
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            else:  # producers start at random offsets, then keep their own pace
                await asyncio.sleep(random.uniform(0, period))
                next_at = time.perf_counter()
            for n in range(requests):
                next_at += period
                started = time.perf_counter()
                answer = await http.post(
                    f"{base}/api/league/stats-jobs",
                    json={"triggeredBy": "admin", "requestId": f"load-{index}-{n}"},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 202, answer.text
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

    await asyncio.gather(*(client(i) for i in range(clients)))
    return latencies


WAITS_QUERY = """
WITH a AS (
    SELECT pid, state,
           CASE WHEN application_name LIKE 'league-web%%' THEN 'web'
                WHEN application_name LIKE 'league-worker%%' THEN 'worker'
                ELSE 'other' END AS who,
           coalesce(wait_event_type || ':' || wait_event, 'CPU') AS wait,
           CASE WHEN state LIKE 'idle in%%' THEN 'idle in transaction'
                WHEN query LIKE 'COMMIT%%' THEN 'COMMIT'
                WHEN query LIKE '%%request_run%%' THEN 'request_run'
                WHEN query LIKE '%%nightcrew.jobs%%' THEN 'jobs statement'
                ELSE 'statement' END AS what
    FROM pg_stat_activity
    WHERE datname = current_database() AND state <> 'idle' AND pid <> pg_backend_pid()
)
SELECT a.who, a.wait, a.what,
       (SELECT b.who || ' ' || b.what FROM a b
        WHERE a.wait LIKE 'Lock:%%' AND b.pid = (pg_blocking_pids(a.pid))[1])
FROM a
"""


async def sample_waits(url: str, stop: asyncio.Event) -> dict[str, int]:
    """Count non-idle backends by process, wait event and statement, every 20 ms."""
    counts: dict[str, int] = {"samples": 0}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            cur = await conn.execute(WAITS_QUERY)
            for who, wait, what, blocker in await cur.fetchall():
                name = f"{who} {wait} ({what})" + (f" behind {blocker}" if blocker else "")
                counts[name] = counts.get(name, 0) + 1
            counts["samples"] += 1
            await asyncio.sleep(0.02)
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


async def measure(
    args: argparse.Namespace,
    url: str,
    key: str,
    webs: list[str],
    stop_worker: Callable[[], None],
) -> dict[str, Any]:
    figures: dict[str, Any] = {"sequential_ms": await sequential_ms(url)}
    auth = {"Authorization": f"Bearer {key}"}
    per_run: dict[str, list[float]] = {"run_ms": [], "queue_latency_ms": [], "invalidation_ms": []}
    async with httpx.AsyncClient(headers=auth, timeout=30) as http:
        for web in webs:  # every process listening before the first run
            await http.get(f"{web}/api/league/stats/hall_of_fame")
        for n in range(args.runs):
            for name, value in (await one_run(http, webs, url, n)).items():
                per_run[name].append(value)
    figures.update({name: summary(values) for name, values in per_run.items()})
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_waits(url, stop)) if args.sample_waits else None
    load = await enqueue_load(webs, key, args.clients, args.requests, args.rate, args.burst)
    stop.set()
    figures["enqueue_ms"] = summary(load)
    figures["enqueue_pacing"] = "lock-step bursts" if args.burst else "random offsets"
    if sampler is not None:
        figures["enqueue_waits"] = await sampler
    if args.no_refresh_too:
        # The same load with the worker stopped: the endpoint and the database alone, without
        # the refreshes that the load itself keeps starting on the same 2 cores.
        stop_worker()
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_waits(url, stop)) if args.sample_waits else None
        load = await enqueue_load(webs, key, args.clients, args.requests, args.rate, args.burst)
        stop.set()
        figures["enqueue_no_refresh_ms"] = summary(load)
        if sampler is not None:
            figures["enqueue_no_refresh_waits"] = await sampler
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--db-name", default=DATABASE, help="database to (re)create")
    parser.add_argument("--port", type=int, default=18700, help="first web process's port")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--web", type=int, default=2)
    parser.add_argument(
        "--worker-concurrency", type=int, default=12, help="the worker process's --concurrency"
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=float,
        default=1.0,
        help="requests per second per client (0: back to back, saturation)",
    )
    parser.add_argument(
        "--burst", action="store_true", help="clients in lock-step (all at once each period)"
    )
    parser.add_argument(
        "--sample-waits", action="store_true", help="sample pg_stat_activity during the load"
    )
    parser.add_argument(
        "--no-refresh-too",
        action="store_true",
        help="then the same load again with the worker stopped (no refresh running)",
    )
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url (or NIGHTCREW_DATABASE_URL)")
    url = recreate(args.database_url, args.db_name)
    app = build_app(url, migrate_on_start=False)
    app.migrate()
    with app.pool().connection() as conn:
        _, key = create_api_key(conn, "bench", admin=True)
    app.close()

    async def load() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            return await load_demo(conn, DemoSize())

    loaded = asyncio.run(load())
    logs = Path(tempfile.mkdtemp(prefix="league-bench-"))
    procs, webs = [], []
    try:
        for index in range(args.web):
            port = args.port + index
            log = logs / f"web-{index}.log"
            procs.append(start(["serve", "--port", str(port)], url, log, f"league-web-{index}"))
            webs.append(f"http://127.0.0.1:{port}")
        worker = start(
            ["worker", "--concurrency", str(args.worker_concurrency)],
            url,
            logs / "worker.log",
            "league-worker",
        )
        procs.append(worker)

        def stop_worker() -> None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)

        for web in webs:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{web}/api/league/stats/hall_of_fame", timeout=1).is_success:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{web} did not start (logs in {logs})")
                time.sleep(0.1)
        figures = asyncio.run(measure(args, url, key, webs, stop_worker))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=15)
    print(json.dumps({"league": loaded, "web_processes": args.web, **figures}, indent=2))


if __name__ == "__main__":
    main()
