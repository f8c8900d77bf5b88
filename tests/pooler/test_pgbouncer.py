"""Behind PgBouncer in transaction mode: the pools never prepare, session-bound work (LISTEN,
the fetch connection, the scheduler's leader lock) goes to ``direct_url``, and a worker, its
scheduler and the HTTP API run through the pooler without an error.

A real Debian ``pgbouncer`` in front of the test database; skipped, with the reason, where
it is not installed (``make drills`` installs it as root).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from psycopg.conninfo import conninfo_to_dict

from drills.infra import Bouncer, free_port, pgbouncer, pgbouncer_missing
from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.queries import query
from nightcrew.scheduler.loop import Scheduler
from tests.faults import apps
from tests.faults.conftest import WorkerProcesses, scalar
from tests.support import await_until, wait_until

pytestmark = pytest.mark.skipif(bool(pgbouncer_missing()), reason=pgbouncer_missing() or "")


@pytest.fixture(autouse=True)
def _tcp_server(db_url: str) -> None:
    """PgBouncer here reaches the server over TCP (the embedded server listens on a socket
    in root's private folder, out of the pooler's reach)."""
    if _server(db_url)[0].startswith("/"):
        pytest.skip("the test server is reached over a unix socket; PgBouncer needs TCP here")


def _server(db_url: str) -> tuple[str, int, str]:
    parts = conninfo_to_dict(db_url)
    return str(parts.get("host", "127.0.0.1")), int(parts.get("port", 5432)), str(parts["dbname"])


@pytest.fixture
def one_server_conn(db_url: str) -> Iterator[Bouncer]:
    """PgBouncer with a single server connection: every client shares one session."""
    host, port, _ = _server(db_url)
    with pgbouncer(host, port, pool_size=1) as bouncer:
        yield bouncer


def pooled_app(bouncer: Bouncer, db_url: str, **settings: object) -> App:
    """An App whose pools go through ``bouncer`` and whose sessions go to ``db_url``."""
    return App(bouncer.url(_server(db_url)[2]), direct_url=db_url, migrate_on_start=False,
               **settings)  # fmt: skip


def test_pooled_connections_never_prepare(one_server_conn: Bouncer, db_url: str) -> None:
    # Two clients on one server session: had either prepared "_pg3_0", the other's prepare
    # of the same name would fail (or worse, run the other's statement).
    app = pooled_app(one_server_conn, db_url, pool_min_size=2)
    try:
        with app.pool().connection() as first, app.pool().connection() as second:
            for _ in range(10):
                for conn in (first, second):
                    conn.execute(query("get_job"), {"id": uuid.uuid4()})
    finally:
        app.close()


def test_listen_off_without_direct_url_never_prepares_either(
    one_server_conn: Bouncer, db_url: str
) -> None:
    # listen=False is the documented set-up behind a pooler that offers no direct URL.
    app = App(one_server_conn.url(_server(db_url)[2]), listen=False, migrate_on_start=False,
              pool_min_size=2)  # fmt: skip
    try:
        with app.pool().connection() as first, app.pool().connection() as second:
            for _ in range(10):
                for conn in (first, second):
                    conn.execute(query("get_job"), {"id": uuid.uuid4()})
    finally:
        app.close()


async def test_one_scheduler_leads_through_pgbouncer(one_server_conn: Bouncer, db_url: str) -> None:
    # Through the pooler both lock attempts would land on the one server session, where a
    # session advisory lock is re-entrant: two leaders. On direct_url, one.
    apps_ = [pooled_app(one_server_conn, db_url) for _ in range(2)]
    schedulers = [Scheduler(app) for app in apps_]
    try:
        led = [await s.leadership.try_acquire() for s in schedulers]
        assert led.count(True) == 1, led
    finally:
        for s in schedulers:
            await s.leadership.release()


async def test_heartbeats_through_pgbouncer_never_prepare(
    one_server_conn: Bouncer, db_url: str
) -> None:
    # Each worker renews its leases on a connection of its own, through the pooler. Two such
    # connections on one server session: had either prepared "_pg3_0" (psycopg does after 5
    # runs of a statement), the other's prepare would fail and its heartbeats with it (seen
    # when a loaded PgBouncer moved a heartbeat to another server connection).
    apps_ = [pooled_app(one_server_conn, db_url) for _ in range(2)]
    workers = [app.worker(queues=["default"]) for app in apps_]
    try:
        for _ in range(10):
            for worker in workers:
                await worker.heartbeat()
    finally:
        for worker, app in zip(workers, apps_, strict=True):
            await worker._close_lease_connection()
            await app.aclose()


async def test_worker_listens_on_direct_url(one_server_conn: Bouncer, db_url: str) -> None:
    # poll_seconds is long: only a NOTIFY heard on the direct connection wakes the worker.
    app = pooled_app(one_server_conn, db_url, poll_seconds=60, lease_seconds=5,
                     heartbeat_seconds=1)  # fmt: skip
    app.registry.update(apps.app.registry)
    worker = app.worker(queues=["default"])
    runner = asyncio.create_task(worker.run())
    try:
        await worker.wait_listening()
        await asyncio.sleep(0.2)  # let the first (empty) fetch pass: the worker now waits
        job_id = await app.aenqueue("faults.sleep", {"seconds": 0})

        async def done() -> bool:
            job = await app.aget_job(job_id)
            return job is not None and job.status == "completed"

        await await_until(done, 5, "the job to complete without polling")
    finally:
        worker.stop()
        await runner
        await app.aclose()


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[Bouncer, str, str]]:
    """PgBouncer (4 server connections) and the HTTP API through it: (bouncer, url, key)."""
    host, port, _ = _server(db_url)
    with pgbouncer(host, port, pool_size=4) as bouncer:
        app = pooled_app(bouncer, db_url)
        app.registry.update(apps.app.registry)
        with app.pool().connection() as conn:
            key = create_key(conn, "alice", actor="test")[1]
        config = uvicorn.Config(create_app(app), host="127.0.0.1", port=free_port(),
                                log_level="warning", lifespan="on")  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
        thread.start()
        wait_until(lambda: server.started, 15, "uvicorn to start")
        try:
            yield bouncer, f"http://127.0.0.1:{config.port}", key
        finally:
            server.should_exit = True
            thread.join(15)
            app.close()


def test_worker_scheduler_and_api_through_pgbouncer(
    api: tuple[Bouncer, str, str], db_url: str, workers: WorkerProcesses, tmp_path: Path
) -> None:
    bouncer, base, key = api
    dbname = _server(db_url)[2]
    procs = [
        workers.start(bouncer.url(dbname), concurrency=50, direct_url=db_url, pool_max_size=4)
        for _ in range(2)
    ]
    for proc in procs:
        workers.wait_registered(db_url, proc)
    headers = {"Authorization": f"Bearer {key}"}
    ids = []
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        for n in range(200):
            body = {"type": "faults.sleep", "payload": {"seconds": 0.05 * (n % 3)}}
            reply = client.post("/api/jobs", json=body)
            assert reply.status_code == 202, reply.text
            ids.append(reply.json()["id"])
        done = ("SELECT count(*) FROM nightcrew.jobs"
                " WHERE id = ANY(%s::uuid[]) AND status = 'completed'")  # fmt: skip
        wait_until(lambda: scalar(db_url, done, (ids,)) == len(ids), 30, "every job to run")
        assert client.get(f"/api/jobs/{ids[-1]}").json()["status"] == "completed"
    # The scheduler of one worker process leads, on a direct connection.
    leaders = scalar(db_url, "SELECT count(*) FROM pg_stat_activity"
                             " WHERE application_name LIKE 'nightcrew-scheduler:%%'"
                             " AND datname = current_database()")  # fmt: skip
    assert leaders == 1
    for proc in procs:
        text = workers.log(proc)
        assert "Traceback" not in text and "prepared statement" not in text, text[-3000:]
        assert " ERROR " not in text and "WARNING" not in text, text[-3000:]
    assert "ERROR" not in bouncer.log_text(), bouncer.log_text()[-3000:]
