"""nightcrew adapter for the peers' harness (../shared/bench-peers/harness/driver.py).

Follows the adapter contract of that harness's README. The driver finds adapters next to its
own ``harness/`` folder, so it is run through a folder of symlinks; see bench/README.md.
``conc`` is ``"CONC"`` or ``"CONC/FETCH_BATCH"`` (worker.py documents every field).
"""

import os
import sys
from importlib.metadata import version as _version

import psycopg

from nightcrew import App

PORT = os.environ.get("PGPORT", "55432")
DB = "nightcrew_peer"
SERVER = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"
DSN = f"postgresql://postgres@127.0.0.1:{PORT}/{DB}"
INSTALLED_SQL = "SELECT to_regclass('nightcrew.jobs') IS NOT NULL"
RESET_SQL = "TRUNCATE nightcrew.jobs, nightcrew.workers"
STORED_SQL = "SELECT count(*) FROM nightcrew.jobs"
# Completed jobs stay in the table (queryable history), so "done" is a status count.
DONE_SQL = "SELECT count(*) FROM nightcrew.jobs WHERE status = 'completed'"
BULK_API = "App.aenqueue_many([{type, payload}, ...]) (COPY, one transaction)"
# (worker processes, "concurrency/fetch_batch"); complete_batch 1000, complete_interval 5 ms.
DRAIN_CONFIGS = [(1, "500/500"), (2, "200/200"), (2, "500/500/1000/10")]
LATENCY_CONFIG = (1, "10/100")
JOB_TYPE = "bench.noop"


def _ensure_database() -> None:
    # The driver connects to DB before install(), so the database is created on import.
    with psycopg.connect(SERVER, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DB}"')


_ensure_database()
_app = App(DSN, migrate_on_start=False)


@_app.job(JOB_TYPE, max_attempts=1)
async def _client_side(ctx, payload):  # registered so the client may enqueue the type
    raise AssertionError("the client never runs jobs")


def label():
    return "nightcrew"


def version():
    return _version("nightcrew")


def describe(procs, conc):
    c, _, f = str(conc).partition("/")
    return (
        f"{procs} proc x concurrency={c} fetch_batch={f or 100} "
        "complete_batch=1000 complete_interval_ms=5"
    )


def install():
    from nightcrew.db.migrate import migrate

    migrate(DSN)


async def client_open():
    await _app.apool()


async def client_close():
    await _app.aclose()


async def enqueue_one(p):
    await _app.aenqueue(JOB_TYPE, p)


async def enqueue_bulk(items):
    await _app.aenqueue_many([{"type": JOB_TYPE, "payload": p} for p in items])


def worker_argv(conc, index):
    return [sys.executable, "worker.py", str(conc)]
