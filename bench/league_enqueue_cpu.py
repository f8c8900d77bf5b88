"""CPU of one ``POST /api/league/stats-jobs`` in the web process: the league App served in
process (httpx over ASGI, no sockets), ``--requests`` requests one after the other, each
joining the waiting run (no worker runs, so the run created by the first one waits).

    python bench/league_enqueue_cpu.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Recreates the database ``league_cpu``. Prints one JSON object: the process's CPU per request
(client included: it is the same in any comparison of server code) and the wall time per
request. CPU, unlike latency, barely depends on how busy the machine is, which makes this
the figure to compare code by on a shared machine (interleave runs: see the docstring of
bench/http_ab.py for running another tree with ``PYTHONPATH``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import httpx
import psycopg
from psycopg.conninfo import make_conninfo

# Run as a script, this file's folder comes first on sys.path: drop it (bench/league.py).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from league.app import build_app  # noqa: E402
from nightcrew import create_api_key  # noqa: E402
from nightcrew.http import create_app  # noqa: E402

DATABASE = "league_cpu"


async def measure(url: str, key: str, requests: int) -> dict[str, float]:
    app = build_app(url, migrate_on_start=False)
    api = create_app(app)
    headers = {"Authorization": f"Bearer {key}"}
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://x", headers=headers) as http:

        async def post(n: int) -> None:
            body = {"triggeredBy": "admin", "requestId": f"cpu-{n}"}
            answer = await http.post("/api/league/stats-jobs", json=body)
            assert answer.status_code == 202, answer.text

        for n in range(20):  # warm up: the pool, prepared statements, the key
            await post(-n - 1)
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(requests):
            await post(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await app.aclose()
    return {
        "cpu_ms_per_request": 1000 * cpu / requests,
        "wall_ms_per_request": 1000 * wall / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url (or NIGHTCREW_DATABASE_URL)")
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = make_conninfo(args.database_url, dbname=DATABASE)
    app = build_app(url, migrate_on_start=False)
    app.migrate()
    with app.pool().connection() as conn:
        _, key = create_api_key(conn, "bench", admin=True)
    app.close()
    figures = asyncio.run(measure(url, key, args.requests))
    print(json.dumps({"load1": os.getloadavg()[0], **figures}))


if __name__ == "__main__":
    main()
