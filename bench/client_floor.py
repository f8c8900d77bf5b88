"""The floor of an async enqueue for one Python driver: the cheapest statement that does what
a single enqueue must (one durable job row in ``nightcrew.jobs`` and the NOTIFY that wakes the
workers, in one autocommit statement, prepared), back to back from one task.

With ``--clients N`` (N > 1), N tasks of one process, each on its own connection, send the job
row alone: concurrent enqueues may share their wake-ups (nightcrew's do), so the row is all
each one must send. That is the most any single-process Python client of the driver can
enqueue, whatever library it runs: the floor of the 32-client figure.

    python bench/client_floor.py --driver psycopg --url postgresql://.../nightcrew_bench
    python bench/client_floor.py --driver psycopg --clients 32 --url ...
    /tmp/peerbench/venv-pgqueuer/bin/python bench/client_floor.py --driver asyncpg --url ...

No nightcrew code runs: the script imports only the driver, so it runs in PgQueuer's venv
too (asyncpg, PgQueuer's driver). Prints one JSON object: jobs/s and the client's CPU per
job. ``bench/floors.py`` (``client_floors``) runs it for both drivers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

STATEMENT = (
    "WITH ins AS (INSERT INTO nightcrew.jobs (id, type, queue, payload)"
    " VALUES ($1, 'bench.noop', 'default', $2::jsonb) RETURNING queue)"
    " SELECT pg_notify('nightcrew_jobs', queue) FROM ins"
)
ROW_ONLY = (
    "INSERT INTO nightcrew.jobs (id, type, queue, payload)"
    " VALUES ($1, 'bench.noop', 'default', $2::jsonb)"
)
WARM_UP = 50


def time_ordered_id(counter: int) -> uuid.UUID:
    """A UUIDv7-shaped id (milliseconds first), as nightcrew's: inserts append to the key."""
    return uuid.UUID(int=(time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | counter)


async def psycopg_insert(
    url: str, text: str = STATEMENT
) -> tuple[Callable[[int], Awaitable[Any]], Any]:
    import psycopg

    conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
    statement = text.replace("$1", "%s").replace("$2", "%s")
    returns = text is STATEMENT

    async def insert(i: int) -> Any:
        payload = json.dumps({"i": i, "t": time.time()})
        cur = await conn.execute(statement, (time_ordered_id(i), payload), prepare=True)
        return await cur.fetchone() if returns else None

    return insert, conn


async def asyncpg_insert(
    url: str, text: str = STATEMENT
) -> tuple[Callable[[int], Awaitable[Any]], Any]:
    import asyncpg
    from psycopg.conninfo import conninfo_to_dict  # PgQueuer's venv has psycopg too

    params = conninfo_to_dict(url)  # a libpq URL or key=value string, as bench/ passes
    names = {"host": "host", "port": "port", "user": "user", "password": "password",
             "dbname": "database"}  # fmt: skip
    conn = await asyncpg.connect(**{names[k]: v for k, v in params.items() if k in names})

    async def insert(i: int) -> Any:
        payload = json.dumps({"i": i, "t": time.time()})
        return await conn.fetchval(text, time_ordered_id(i), payload)

    return insert, conn


async def measure(driver: str, url: str, n: int, clients: int = 1) -> dict[str, Any]:
    """``n`` inserts after a warm-up, back to back in each of ``clients`` tasks (one
    connection each); jobs/s and client CPU µs per job."""
    connect = psycopg_insert if driver == "psycopg" else asyncpg_insert
    opened = [await connect(url, STATEMENT if clients == 1 else ROW_ONLY) for _ in range(clients)]

    async def run(insert: Callable[[int], Awaitable[Any]], ids: range) -> None:
        for i in ids:
            await insert(i)

    try:
        await asyncio.gather(*(run(ins, range(k, WARM_UP * clients, clients))
                               for k, (ins, _) in enumerate(opened)))  # fmt: skip
        first = WARM_UP * clients
        t0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(run(ins, range(first + k, first + n, clients))
                               for k, (ins, _) in enumerate(opened)))  # fmt: skip
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        for _, conn in opened:
            await conn.close()
    return {"driver": driver, "n": n, "clients": clients, "seconds": seconds,
            "rate": n / seconds, "cpu_us_per_job": 1e6 * cpu / n}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--driver", choices=["psycopg", "asyncpg"], required=True)
    ap.add_argument("--url", required=True, help="a database migrated by nightcrew")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--clients", type=int, default=1, help="tasks, one connection each")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(measure(args.driver, args.url, args.n, args.clients))))


if __name__ == "__main__":
    main()
