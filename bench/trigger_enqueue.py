"""Cost of enqueuing from a trigger: INSERT of a row whose trigger calls nightcrew.enqueue()
against the bare INSERT of the same row into a table without the trigger.

    python bench/trigger_enqueue.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Recreates and migrates the database ``nightcrew_bench_trigger`` (``--db-name``) on that
server. One pgbench
run (a C client, prepared statements, one durable commit per row) interleaves the scripts
at equal weights, so every variant sees the same machine load; pgbench's per-script
latency averages give the ratio to the bare INSERT. Variants: ``trigger`` (a job per row,
no dedupe key), ``trigger_active`` (a dedupe key per row, the default scope) and
``trigger_queued`` (the docs/flows.md recipe: a 'queued' dedupe key per row); and
``floor_same_tx``, the row plus a plain INSERT of its job and the NOTIFY in one statement
(no trigger, no PL/pgSQL: what writing a job in the same transaction costs at least), and
``floor_same_tx_keyed``, the same with an 'active' dedupe key (ON CONFLICT DO NOTHING).
Prints JSON; the target is a ratio of at most 1.5.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from nightcrew.db.migrate import migrate

DATABASE = "nightcrew_bench_trigger"
PGBENCH_FALLBACK = "/usr/lib/postgresql/15/bin/pgbench"
SETUP = """
INSERT INTO nightcrew.job_types (type, queue) VALUES ('bench.index', 'bench')
    ON CONFLICT (type) DO NOTHING;
DROP TABLE IF EXISTS bench_bare, bench_docs, bench_docs_active, bench_docs_queued;
CREATE TABLE bench_bare (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, content text);
CREATE TABLE bench_docs (LIKE bench_bare INCLUDING ALL);
CREATE TABLE bench_docs_active (LIKE bench_bare INCLUDING ALL);
CREATE TABLE bench_docs_queued (LIKE bench_bare INCLUDING ALL);
CREATE OR REPLACE FUNCTION bench_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nightcrew.enqueue('bench.index', payload => jsonb_build_object('id', NEW.id));
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION bench_enqueue_keyed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM nightcrew.enqueue('bench.index', payload => jsonb_build_object('id', NEW.id),
                              dedupe_key => 'bench.index:' || NEW.id,
                              dedupe_scope => TG_ARGV[0]);
    RETURN NULL;
END
$$;
CREATE TRIGGER bench_enqueue AFTER INSERT OR UPDATE OF content ON bench_docs
    FOR EACH ROW EXECUTE FUNCTION bench_enqueue();
CREATE TRIGGER bench_enqueue_active AFTER INSERT OR UPDATE OF content ON bench_docs_active
    FOR EACH ROW EXECUTE FUNCTION bench_enqueue_keyed('active');
CREATE TRIGGER bench_enqueue_queued AFTER INSERT OR UPDATE OF content ON bench_docs_queued
    FOR EACH ROW EXECUTE FUNCTION bench_enqueue_keyed('queued');
TRUNCATE nightcrew.jobs;
"""
SCRIPTS = {
    "bare": "INSERT INTO bench_bare (content) VALUES ('some document text');\n",
    "trigger": "INSERT INTO bench_docs (content) VALUES ('some document text');\n",
    "trigger_active": "INSERT INTO bench_docs_active (content) VALUES ('some document text');\n",
    # No trigger and no PL/pgSQL: the row, its job and the wake-up in one statement, what
    # any enqueue in the same transaction has to write (the floor under the trigger).
    "floor_same_tx": (
        "WITH d AS (INSERT INTO bench_bare (content) VALUES ('some document text') RETURNING id),"
        " j AS (INSERT INTO nightcrew.jobs (id, type, queue, payload)"
        " SELECT nightcrew.uuid7(), 'bench.index', 'bench', jsonb_build_object('id', d.id)"
        " FROM d RETURNING queue)"
        " SELECT pg_notify('nightcrew_jobs', queue) FROM j;\n"
    ),
    "trigger_queued": "INSERT INTO bench_docs_queued (content) VALUES ('some document text');\n",
    # The same with an 'active' dedupe key: the speculative insert on the key's unique index
    # that any race-free keyed enqueue pays (the floor under trigger_active).
    "floor_same_tx_keyed": (
        "WITH d AS (INSERT INTO bench_bare (content) VALUES ('some document text') RETURNING id),"
        " j AS (INSERT INTO nightcrew.jobs (id, type, queue, payload, dedupe_key)"
        " SELECT nightcrew.uuid7(), 'bench.index', 'bench', jsonb_build_object('id', d.id),"
        " 'floor:' || d.id FROM d"
        " ON CONFLICT (dedupe_key) WHERE dedupe_key IS NOT NULL AND dedupe_scope = 'active'"
        " AND status IN ('pending', 'processing', 'retrying') DO NOTHING RETURNING queue)"
        " SELECT pg_notify('nightcrew_jobs', queue) FROM j;\n"
    ),
}
_SCRIPT_LATENCY = re.compile(r"SQL script \d+: (\S+)\n(?:.*\n)*?\s*- latency average = ([\d.]+) ms")


def prepare(server_url: str, database: str = DATABASE) -> str:
    """Recreate and migrate the benchmark database and its tables; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    url = make_conninfo(server_url, dbname=database)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
    return url


def run_pgbench(url: str, seconds: int, clients: int) -> tuple[list[str], dict[str, float]]:
    """One pgbench run of all scripts at equal weights; (command, latency ms per script)."""
    pgbench = shutil.which("pgbench") or PGBENCH_FALLBACK
    files = []
    try:
        for name, body in SCRIPTS.items():
            with tempfile.NamedTemporaryFile(
                "w", prefix=f"{name}.", suffix=".sql", delete=False
            ) as f:
                f.write(body)
            files.append((name, f.name))
        cmd = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
               "-T", str(seconds)]  # fmt: skip
        for _, path in files:
            cmd += ["-f", f"{path}@1"]
        cmd.append(url)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    finally:
        for _, path in files:
            os.unlink(path)
    latencies: dict[str, float] = {}
    for script, latency in _SCRIPT_LATENCY.findall(out):
        name = next(n for n, p in files if os.path.basename(p) == os.path.basename(script))
        latencies[name] = float(latency)
    return cmd, latencies


def main() -> None:
    """Parse arguments, run, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True, help="any database on the server")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--db-name", default=DATABASE, help="the database it recreates")
    args = ap.parse_args()
    url = prepare(args.database_url, args.db_name)
    cmd, latencies = run_pgbench(url, args.seconds, args.clients)
    bare = latencies["bare"]
    result: dict[str, Any] = {
        "command": " ".join(cmd),
        "latency_ms": latencies,
        "ratio_to_bare": {name: round(ms / bare, 3) for name, ms in latencies.items()},
        "target_ratio": 1.5,
    }
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
