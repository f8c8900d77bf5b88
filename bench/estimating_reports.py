"""Time estimating's periodic jobs on a large usage log: the weekly report, the daily snapshot
with per-project costs, and the monthly archive of estimates untouched for 13 months:
``python bench/estimating_reports.py [--rows N] [--days D] [--batch B]``.

Creates a scratch database on the server of ``NIGHTCREW_TEST_DATABASE_URL`` (default: the
local PostgreSQL), generates the rows with ``generate_series`` (1,000 items of one factor
each, 200 projects, estimates of 5 lines spread over ``--days`` days), times each step with
the same code the jobs run and drops the database. Results go to docs/estimating.md by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg.conninfo import make_conninfo

from estimating import prices, reports
from nightcrew.db.migrate import migrate

T = TypeVar("T")
SERVER = os.environ.get(
    "NIGHTCREW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)

GENERATE = """
INSERT INTO estimating.catalogue (kind, code, name, unit, rate)
VALUES ('material', 'M', 'Material', 'u', 12.5);
INSERT INTO estimating.items (code, name, unit)
SELECT 'ITEM-' || i, 'Item ' || i, 'u' FROM generate_series(1, 1000) AS i;
INSERT INTO estimating.item_factors (item_id, catalogue_id, quantity_per_unit)
SELECT id, (SELECT id FROM estimating.catalogue), 1 + id % 7 FROM estimating.items;
INSERT INTO estimating.projects (id, name)
SELECT 'P' || p, 'Project ' || p FROM generate_series(1, 200) AS p;
INSERT INTO estimating.estimates (project_id, estimate_id)
SELECT 'P' || (1 + e % 200), 'E' || e FROM generate_series(1, {estimates}) AS e;
-- Five lines per estimate, written within the same hour of a day spread over the window.
INSERT INTO estimating.usage (item_id, project_id, estimate_key, quantity, used_at)
SELECT 1 + floor(1000 * power(random(), 2))::int, 'P' || (1 + e % 200), e,
       round((random() * 50)::numeric, 2),
       now() - (e::float / {estimates}) * interval '{days} days' + line * interval '1 minute'
FROM generate_series(1, {estimates}) AS e, generate_series(1, 5) AS line;
ANALYZE;
"""


async def timed(label: str, step: Awaitable[T]) -> T:
    """Await ``step`` and print how long it took."""
    started = time.perf_counter()
    result = await step
    print(f"{label}: {time.perf_counter() - started:.2f} s")
    return result


async def run(rows: int, days: int, batch: int) -> None:
    name = f"bench_est_reports_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(SERVER, dbname=name)
    try:
        migrate(url)
        migrate(url, package="estimating", schema="estimating")
        started = time.perf_counter()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(GENERATE.format(estimates=rows // 5, days=days).encode())
        print(f"generated {rows:,} usage rows over {days} days in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        today = datetime.now(UTC).date()
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            report = await timed("weekly report", reports.compute_weekly_report(conn, today))
            print(f"  {report['usage_rows']:,} uses, {len(report['by_project'])} projects")
            counts = await timed("daily snapshot (catalogue, items, per-project costs)",
                                 prices.capture_snapshot(conn, today))  # fmt: skip
            print(f"  {counts}")
            cutoff = datetime.now(UTC) - timedelta(days=reports.ARCHIVE_AFTER_DAYS)
            moved, batches, after = [0, 0], 0, 0
            archive_started = time.perf_counter()
            while True:
                async with conn.transaction():
                    last, estimates, lines = await reports.archive_batch(conn, cutoff, after, batch)
                if last is None:
                    break
                moved, batches, after = [moved[0] + estimates, moved[1] + lines], batches + 1, last
            seconds = time.perf_counter() - archive_started
            print(f"archive: {moved[0]:,} estimates and {moved[1]:,} lines in {batches} "
                  f"batches of {batch} in {seconds:.2f} s "
                  f"({moved[1] / seconds:,.0f} lines/s)")  # fmt: skip
    finally:
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--batch", type=int, default=reports.ARCHIVE_BATCH)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.days, args.batch))


if __name__ == "__main__":
    main()
