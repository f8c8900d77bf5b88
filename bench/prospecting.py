"""Prospecting benchmark: enqueue latency of ``POST /api/prospecting/campaigns`` at 50
concurrent clients, and the wall time of whole campaigns (1, 2, 4 at once) against the
provider sandbox at 200 ms per call with the default limits (5 calls/s per provider).

Starts, as child processes: the sandbox (``python -m prospecting.sandbox``), the API server
(``--serve`` mode of this script) and worker processes (``nightcrew worker --app
prospecting.app:app``). The URL names a *server*: the script recreates the database
``nightcrew_bench_prospecting`` on it.

    python bench/prospecting.py --database-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/prospecting.py --database-url ... --quick   # 20 results, 1 and 2 campaigns
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nightcrew.keys import create_key

REPO = Path(__file__).resolve().parents[1]
# Run as a script, this file's folder comes first on sys.path and its name would hide the
# prospecting package it measures (imported inside the functions below).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(url: str, port: int) -> None:
    """Child process: serve the API of a prospecting App until killed."""
    import uvicorn

    from nightcrew.http import create_app
    from prospecting.app import build_app

    app = build_app(url, pool_max_size=20, migrate_on_start=False)
    uvicorn.run(create_app(app), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


def recreate_database(server: str, name: str) -> str:
    """Drop and create ``name`` on the server; migrate nightcrew and prospecting."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    from prospecting.app import build_app

    app = build_app(url)
    app.migrate()
    app.close()
    return url


def wait_for(check: Any, timeout: float, what: str) -> None:
    """Poll ``check`` until truthy or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url``."""
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


async def enqueue_load(base: str, key: str, clients: int, seconds: float,
                       rate: float) -> dict[str, Any]:  # fmt: skip
    """``clients`` concurrent producers posting campaigns for ``seconds`` (each at most
    ``rate`` per second; 0: back to back); latency percentiles of the 202s."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    body = {"businessType": "bakery", "location": "Leeds", "maxResults": 10}
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as client:  # fmt: skip

        async def producer(deadline: float) -> None:
            interval = 1 / rate if rate else 0.0
            next_at = time.perf_counter() + random.uniform(0, interval)
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post("/api/prospecting/campaigns", json=body)
                statuses[str(response.status_code)] += 1
                if response.status_code == 202:
                    latencies.append(time.perf_counter() - started)
                if interval:
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        # Warm up the connections first, untimed.
        await asyncio.gather(*(client.post("/api/prospecting/campaigns", json=body)
                               for _ in range(clients)))  # fmt: skip
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(producer(deadline) for _ in range(clients)))
    latencies.sort()

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)

    return {"requests": len(latencies), "per_second": round(len(latencies) / seconds, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(1000 * latencies[-1], 1),
            "mean_ms": round(1000 * statistics.fmean(latencies), 1),
            "statuses": dict(statuses)}  # fmt: skip


def clear(url: str) -> None:
    """Remove every campaign and campaign job (the enqueue test's too)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE prospecting.campaigns CASCADE")
        conn.execute("DELETE FROM nightcrew.jobs WHERE type = 'prospecting.campaign'")


def run_campaigns(base: str, keys: list[str], url: str, count: int,
                  max_results: int) -> dict[str, Any]:  # fmt: skip
    """``count`` campaigns submitted at once (by different users); wall time until all
    completed, and each one's."""
    clear(url)
    started = time.monotonic()
    jobs = []
    for i in range(count):
        answer = httpx.post(f"{base}/api/prospecting/campaigns", timeout=10,
                            headers={"Authorization": f"Bearer {keys[i]}"},
                            json={"businessType": "coffee shop", "location": f"City {i}",
                                  "maxResults": max_results})  # fmt: skip
        answer.raise_for_status()
        jobs.append(answer.json()["jobId"])
    finished: dict[str, float] = {}

    def all_done() -> bool:
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT id::text, status::text FROM nightcrew.jobs"
                                " WHERE id = ANY(%s::uuid[])", (jobs,)).fetchall()  # fmt: skip
        for job_id, status in rows:
            if status in ("completed", "failed", "cancelled") and job_id not in finished:
                finished[job_id] = time.monotonic() - started
        return len(finished) == len(jobs)

    wait_for(all_done, 900, f"{count} campaigns")
    with psycopg.connect(url, autocommit=True) as conn:
        leads, cost = conn.execute(
            "SELECT count(*) FILTER (WHERE qualified), (SELECT sum(cost) FROM prospecting.calls)"
            " FROM prospecting.businesses").fetchone() or (0, 0)  # fmt: skip
    return {"campaigns": count, "wall_s": round(max(finished.values()), 1),
            "each_s": sorted(round(s, 1) for s in finished.values()),
            "leads": leads, "cost": float(cost or 0)}  # fmt: skip


def main() -> None:
    """Parse the arguments, start the children, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--db-name", default="nightcrew_bench_prospecting")
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--max-results", type=int, default=50)
    parser.add_argument("--campaigns", default="1,2,4")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--rate", type=float, default=2.0, help="requests per second per client (0: back to back)"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    if not args.database_url:
        parser.error("--database-url (or NIGHTCREW_DATABASE_URL) is required")
    if args.quick:
        args.max_results, args.campaigns, args.seconds = 20, "1,2", 5
    url = recreate_database(args.database_url, args.db_name)
    print(f"database {conninfo_to_dict(url)['dbname']}; sandbox {args.latency_ms:g} ms per call")
    children: list[subprocess.Popen[bytes]] = []
    try:
        sandbox_port, api_port = free_port(), free_port()
        children.append(subprocess.Popen(
            [sys.executable, "-m", "prospecting.sandbox", "--port", str(sandbox_port),
             "--latency-ms", str(args.latency_ms)], cwd=REPO))  # fmt: skip
        sandbox = f"http://127.0.0.1:{sandbox_port}"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NIGHTCREW_", "PROSPECTING_"))}  # fmt: skip
        env.update({f"PROSPECTING_{p.upper()}_URL": f"{sandbox}/{p}"
                    for p in ("places", "finder", "verifier")})  # fmt: skip
        env["NIGHTCREW_DATABASE_URL"] = url
        env["NIGHTCREW_MIGRATE_ON_START"] = "false"
        serve_args = [sys.executable, __file__, "--serve", url, str(api_port)]
        children.append(subprocess.Popen(serve_args, cwd=REPO, env=env))
        base = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: answers(f"{sandbox}/_stats") and answers(f"{base}/healthz"), 60,
                 "the sandbox and the API")  # fmt: skip
        with psycopg.connect(url, autocommit=True) as conn:
            keys = [create_key(conn, f"user{i}", actor="bench")[1] for i in range(4)]

        alone = asyncio.run(enqueue_load(base, keys[0], 1, args.seconds / 2, 0))
        print(f"enqueue, one client back to back (the service time): {alone}")
        figures = asyncio.run(enqueue_load(base, keys[0], args.clients, args.seconds, args.rate))
        print(f"enqueue, {args.clients} clients at {args.rate:g}/s each: {figures}")
        clear(url)

        for _ in range(args.workers):
            children.append(subprocess.Popen(
                [sys.executable, "-m", "nightcrew", "worker", "--app", "prospecting.app:app",
                 "--concurrency", "4"], cwd=REPO, env=env))  # fmt: skip
        for count in (int(n) for n in args.campaigns.split(",")):
            result = run_campaigns(base, keys, url, count, args.max_results)
            print(f"{count} campaign(s) of {args.max_results} results: {result}")
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGTERM)
        for child in reversed(children):
            try:
                child.wait(15)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    main()
