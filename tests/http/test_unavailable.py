"""The database going away under the API (restart, failover): 503 with Retry-After, never a
500 and a traceback. The API's server connections are really terminated."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import httpx
import psycopg
import pytest
import uvicorn

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.http.conftest import free_port
from tests.support import wait_until


@pytest.fixture
def api(db_url: str) -> Iterator[tuple[str, str]]:
    """The HTTP API over the module database, one pooled connection: (base URL, key)."""
    app = App(db_url, migrate_on_start=False, pool_min_size=1, pool_max_size=1)

    @app.job("down.echo", queue="down")
    async def echo(ctx: JobContext, payload: object) -> None:
        return None

    with app.pool().connection() as conn:
        key = create_key(conn, "alice", actor="test")[1]
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=free_port(),
                            log_level="warning", lifespan="on")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{config.port}", key
    finally:
        server.should_exit = True
        thread.join(15)
        app.close()


def terminate_other_backends(db_url: str) -> int:
    """End every other session on the database, as a failover or restart would."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_lost_database_connection_is_503_not_500(
    api: tuple[str, str], db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    base, key = api
    body = {"type": "down.echo", "payload": {}}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/api/jobs", json=body).status_code == 202
        assert terminate_other_backends(db_url) >= 1
        with caplog.at_level(logging.WARNING, logger="nightcrew.http"):
            reply = client.post("/api/jobs", json=body)
        assert reply.status_code == 503, reply.text
        assert reply.headers["retry-after"] == "1"
        assert reply.json()["error"]["code"] == "database_unavailable"
        assert "retry" in reply.json()["error"]["message"]
        assert not any(r.exc_info for r in caplog.records), "logged a traceback"
        # The pool replaces the dead connection: the next request succeeds.
        wait_until(lambda: client.post("/api/jobs", json=body).status_code == 202, 10,
                   "the API to reconnect")  # fmt: skip
