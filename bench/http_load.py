"""Load test of ``POST /api/jobs``: many concurrent clients enqueueing over real HTTP.

Starts the API server in a child process (``--serve`` mode of this script) on a free
port, then runs ``--clients`` concurrent clients for ``--seconds`` and reports enqueue
latency p50/p90/p99/max, throughput and errors. ``--rate`` caps each client's requests
per second (an open workload, like real producers); ``--rate 0`` sends back-to-back
(saturation: latency then mostly measures queueing in front of the server).

    python bench/http_load.py --database-url postgresql://... --clients 200 --seconds 20

The database is migrated first and is left with the enqueued jobs (use a scratch database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter

import httpx

from nightcrew import App, JobContext
from nightcrew.keys import create_key


def build_app(url: str) -> App:
    """The App the benchmark server serves: one no-op public job type."""
    app = App(url, pool_max_size=20)  # migrates the scratch database on first use

    @app.job("bench.noop")
    async def noop(ctx: JobContext, payload: dict[str, object]) -> None:
        return None

    return app


def serve(url: str, port: int) -> None:
    """Child process: serve the API until killed."""
    import uvicorn

    from nightcrew.http import create_app

    uvicorn.run(create_app(build_app(url)), host="127.0.0.1", port=port, log_level="warning",
                access_log=False)  # fmt: skip


async def client_loop(client: httpx.AsyncClient, deadline: float, interval: float,
                      latencies: list[float], statuses: Counter[str]) -> None:  # fmt: skip
    body = {"type": "bench.noop", "payload": {"n": 1}}
    # Independent producers: each starts at a random point of its interval, so the offered
    # load is spread over the second instead of arriving as one synchronized burst.
    next_at = time.perf_counter() + random.uniform(0, interval)
    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            response = await client.post("/api/jobs", json=body)
            statuses[str(response.status_code)] += 1
            if response.status_code == 202:
                latencies.append(time.perf_counter() - started)
        except httpx.HTTPError as exc:
            statuses[type(exc).__name__] += 1
        if interval:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))


async def load(base: str, key: str, clients: int, seconds: float, rate: float) -> dict[str, object]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=30) as client:  # fmt: skip
        for _ in range(20):  # warm up connections and the server's pool
            await client.post("/api/jobs", json={"type": "bench.noop"})
        deadline = time.perf_counter() + seconds
        interval = 1 / rate if rate else 0.0
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, deadline, interval, latencies, statuses)
                               for _ in range(clients)))  # fmt: skip
        elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    errors = sum(n for status, n in statuses.items() if status != "202")
    return {
        "clients": clients, "seconds": seconds, "rate_per_client": rate or "unlimited",
        "requests": sum(statuses.values()), "enqueued_per_s": round(len(latencies) / elapsed),
        "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
        "max_ms": round(1000 * latencies[-1], 2), "mean_ms": round(
            1000 * statistics.fmean(latencies), 2), "errors": errors, "statuses": dict(statuses),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=2.0, help="requests/s per client; 0: max")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("give --database-url or set NIGHTCREW_DATABASE_URL")
    if args.serve:
        serve(args.database_url, args.serve)
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = build_app(args.database_url)
    with app.pool().connection() as conn:
        _, key = create_key(conn, "bench", actor="bench")
    app.close()
    child = subprocess.Popen([sys.executable, __file__, "--database-url", args.database_url,
                              "--serve", str(port)])  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        result = asyncio.run(load(base, key, args.clients, args.seconds, args.rate))
    finally:
        child.terminate()
        child.wait(10)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
