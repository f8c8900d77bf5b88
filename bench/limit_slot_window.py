"""How wide is the window in which a granted rate slot may lie, on the worker's clock?

The late-entry guard (docs/flow-control.md, "Late wakes") never calls before a slot, so it
sleeps until the grant's reply + ``wait``; and it never under-reports lateness, so it counts
from the send + ``slot_after``. Between the two lies the part of the grant's round trip that
follows the server's clock reading: the rest of the function, the commit, the reply. A call
woken exactly on time is already that late by the guard's measure; when it exceeds 2.5 % of
the period (25 ms at N/s) the slot is let pass. This prints that width for ``limit_grant``
(one job, a slot due at once) and ``limit_acquire`` (``ctx.limit``), and the commit alone.

    .venv/bin/python bench/limit_slot_window.py --db-name nc_limit_window [--calls 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

import psycopg

from nightcrew import App
from nightcrew.queries import query

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def fresh_database(server: str, name: str) -> str:
    """Create (or re-create) database ``name``, migrated; return its URL."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(server, dbname=name)
    App(url).migrate()
    return url


def grant_window(conn: psycopg.Connection, key: str) -> tuple[float, float]:
    """One immediate grant: (window width, commit time) in ms."""
    limits = [{"key": key, "rate_count": 1000, "rate_seconds": 1.0, "concurrency": None}]
    jobs = json.dumps([{"id": str(uuid.uuid4()), "attempt": 1, "limits": limits}])
    sent = time.monotonic()
    row = conn.execute(
        query("limit_grant"), {"jobs": jobs, "hold": 0.2, "recheck": 0.25}
    ).fetchone()
    reply = time.monotonic()
    conn.commit()
    committed = time.monotonic()
    assert row is not None
    _, wait, after, _ = row
    return 1000 * (reply + wait - (sent + after)), 1000 * (committed - reply)


def acquire_window(conn: psycopg.Connection, key: str) -> float:
    """One ``ctx.limit`` acquire (autocommit, as the pool runs it): the width in ms."""
    params = {"key": key, "rate_count": 1000, "rate_seconds": 1.0, "concurrency": None,
              "job_id": uuid.uuid4(), "attempt": 1}  # fmt: skip
    sent = time.monotonic()
    row = conn.execute(query("limit_acquire"), params).fetchone()
    reply = time.monotonic()
    assert row is not None
    _, wait, _, after, _ = row
    return 1000 * (reply + wait - (sent + after))


def summary(name: str, values: list[float]) -> str:
    """Median, p90 and max of ``values`` (ms)."""
    q = statistics.quantiles(values, n=10)
    return f"{name}: median {statistics.median(values):.1f} p90 {q[8]:.1f} max {max(values):.1f} ms"


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=SERVER)
    parser.add_argument("--db-name", default="nc_limit_window")
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    url = fresh_database(args.server, args.db_name)
    grants, commits, acquires = [], [], []
    with psycopg.connect(url) as conn, psycopg.connect(url, autocommit=True) as auto:
        for _ in range(args.calls):
            width, commit = grant_window(conn, "window.grant")
            grants.append(width)
            commits.append(commit)
            acquires.append(acquire_window(auto, "window.acquire"))
            time.sleep(0.01)  # 1000/s: every slot due at once
    print(summary("limit_grant window (commit after)", grants))
    print(summary("  its commit", commits))
    print(summary("limit_acquire window (autocommit)", acquires))
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{args.db_name}"')


if __name__ == "__main__":
    main()
