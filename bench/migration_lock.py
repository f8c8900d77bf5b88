"""How long upgrading across migration 0014 locks ``nightcrew.jobs``, by table size.

    python bench/migration_lock.py --database-url postgresql://postgres@127.0.0.1:5432/postgres \
        --db-name nc_migration_bench --rows 1000000 --rounds 2

Each round makes a fresh database (``--db-name``, dropped afterwards), applies migrations
0001-0013, fills ``jobs`` with ``--rows`` jobs (5 % pending, the rest completed: finished
history not yet pruned), VACUUM ANALYZE, then applies 0014 alone, the way ``nightcrew
migrate`` does (one transaction). Meanwhile a second connection, started once 0014 holds
its lock, inserts one job: the time that insert waited is what producers and workers see.
0014 rebuilds ``jobs_fetch_idx`` under the ``ACCESS EXCLUSIVE`` lock its ``ALTER TABLE``
took (docs/operations.md, section 6). Prints one JSON line per round.
"""

from __future__ import annotations

import argparse
import importlib
import json
import threading
import time
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

migrate_module = importlib.import_module("nightcrew.db.migrate")  # the package re-exports migrate()

_FILL = """
INSERT INTO nightcrew.jobs (id, type, queue, status, priority)
SELECT gen_random_uuid(), 't', 'q' || (i %% 4),
       CASE WHEN i %% 20 = 0 THEN 'pending' ELSE 'completed' END::nightcrew.job_status, i %% 5
FROM generate_series(1, %s) i
"""
_LOCK_HELD = """
SELECT count(*) FROM pg_locks
WHERE relation = 'nightcrew.jobs'::regclass AND mode = 'AccessExclusiveLock' AND granted
"""


def _fresh_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(server_url, dbname=name)


def _at_0013(url: str, rows: int) -> tuple[list[Any], str]:
    migrations = migrate_module.available_migrations()
    table = sql.Identifier("nightcrew", "migrations")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        conn.execute("CREATE SCHEMA nightcrew")
        conn.execute(
            "CREATE TABLE nightcrew.migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations[:13]:
            migrate_module._apply(conn, migration, table)
        conn.execute(_FILL, (rows,))
        conn.execute("VACUUM ANALYZE nightcrew.jobs")
        row = conn.execute("SELECT pg_size_pretty(pg_relation_size('nightcrew.jobs'))").fetchone()
    assert row is not None
    return migrations, str(row[0])


def _blocked_insert(url: str, result: dict[str, float]) -> None:
    """Once 0014 holds its lock, insert one job and record how long that took."""
    with psycopg.connect(url, autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while conn.execute(_LOCK_HELD).fetchone() != (1,):
            if time.monotonic() > deadline:
                return
            time.sleep(0.005)
        began = time.perf_counter()
        conn.execute("INSERT INTO nightcrew.jobs (id, type) VALUES (gen_random_uuid(), 'probe')")
        result["insert_waited_s"] = time.perf_counter() - began


def one_round(server_url: str, db_name: str, rows: int) -> dict[str, Any]:
    """Time migration 0014 on a database at 0013 holding ``rows`` jobs."""
    url = _fresh_database(server_url, db_name)
    try:
        migrations, heap = _at_0013(url, rows)
        waited: dict[str, float] = {}
        prober = threading.Thread(target=_blocked_insert, args=(url, waited))
        with psycopg.connect(url, autocommit=True) as conn:
            prober.start()
            began = time.perf_counter()
            migrate_module._apply(conn, migrations[13], sql.Identifier("nightcrew", "migrations"))
            took = time.perf_counter() - began
        prober.join(60)
        insert_waited = waited.get("insert_waited_s", float("nan"))
        return {"rows": rows, "heap": heap, "migration_0014_s": round(took, 3),
                "insert_waited_s": round(insert_waited, 3)}  # fmt: skip
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db_name))
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db-name", default="nc_migration_bench")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for _ in range(args.rounds):
        print(json.dumps(one_round(args.database_url, args.db_name, args.rows)), flush=True)


if __name__ == "__main__":
    main()
