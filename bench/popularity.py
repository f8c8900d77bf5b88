"""Time the popularity aggregation (estimating.aggregate_popularity's SQL) on 5 million
usage rows: ``python bench/popularity.py [--rows N] [--days D]``.

Creates a scratch database on the server of ``NIGHTCREW_TEST_DATABASE_URL`` (default: the
local PostgreSQL), generates the rows with ``generate_series`` (1,000 items, 200 projects,
estimates of 5 lines, spread over ``--days`` days), times the aggregation and drops the
database. Results go to docs/benchmarks.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import psycopg
from psycopg.conninfo import make_conninfo

from estimating import popularity
from nightcrew.db.migrate import migrate

SERVER = os.environ.get(
    "NIGHTCREW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

GENERATE = """
INSERT INTO estimating.catalogue (kind, code, name, unit, rate)
VALUES ('material', 'M', 'Material', 'u', 1);
INSERT INTO estimating.items (code, name, unit)
SELECT 'ITEM-' || i, 'Item ' || i, 'u' FROM generate_series(1, 1000) AS i;
INSERT INTO estimating.projects (id, name)
SELECT 'P' || p, 'Project ' || p FROM generate_series(1, 200) AS p;
INSERT INTO estimating.estimates (project_id, estimate_id)
SELECT 'P' || (1 + e % 200), 'E' || e FROM generate_series(1, {estimates}) AS e;
-- Five lines per estimate; item ids skewed towards the first (popular) items, and the
-- first line of most estimates is one of ten "concrete" items followed by its "rebar".
INSERT INTO estimating.usage (item_id, project_id, estimate_key, quantity, used_at)
SELECT CASE WHEN line = 1 THEN 1 + e % 10
            WHEN line = 2 AND e % 10 < 9 THEN 11 + e % 10
            ELSE 1 + floor(1000 * power(random(), 2))::int END,
       'P' || (1 + e % 200), e, round((random() * 50)::numeric, 2),
       now() - (random() * interval '{days} days')
FROM generate_series(1, {estimates}) AS e, generate_series(1, 5) AS line;
ANALYZE estimating.usage;
"""


async def run(rows: int, days: int) -> None:
    name = f"bench_popularity_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(SERVER, dbname=name)
    try:
        migrate(url)
        migrate(url, package="estimating", schema="estimating")
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(GENERATE.format(estimates=rows // 5, days=days).encode())
            window = conn.execute(
                "SELECT count(*) FROM estimating.usage WHERE used_at > now() - interval '30 days'"
            ).fetchone()
        print(f"generated {rows:,} usage rows over {days} days in "
              f"{time.perf_counter() - started:.1f} s ({window[0] if window else 0:,} "
              "in the last 30 days)")  # fmt: skip
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for run_no in (1, 2):
                result = await popularity.aggregate_popularity(conn)
                print(f"aggregation run {run_no}: {result['seconds']:.2f} s "
                      f"({result['items']} items, {result['pairs']} pairs)")  # fmt: skip
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=180)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.days))


if __name__ == "__main__":
    main()
