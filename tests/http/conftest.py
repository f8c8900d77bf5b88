"""A real uvicorn server on a free port, per test module, over the module's database."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from pydantic import BaseModel

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.support import wait_until

METRICS_TOKEN = "metrics-scrape-token"


class Report(BaseModel):
    week: int


@dataclass
class Gates:
    """Lets a test step the ``demo.steps`` handler forward one stage at a time."""

    loop: asyncio.AbstractEventLoop | None = None
    queue: asyncio.Queue[str] | None = None
    seen: list[str] = field(default_factory=list)


def register_types(app: App, gates: Gates) -> None:
    """The job types the HTTP tests use."""

    @app.job("demo.echo", queue="http")
    async def echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        return payload

    @app.job("demo.typed", queue="http")
    async def typed(ctx: JobContext, payload: Report) -> int:
        return payload.week

    @app.job("demo.internal", queue="http", public=False)
    async def internal(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    @app.job("demo.fail", queue="http", max_attempts=1)
    async def fail(ctx: JobContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    @app.job("demo.ranked", queue="reports", priority_range=(0, 10))
    async def ranked(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    @app.job("demo.steps", queue="http")
    async def steps(ctx: JobContext, payload: dict[str, Any]) -> str:
        assert gates.queue is not None
        for progress, stage in ((25, "download"), (50, "parse"), (75, "write")):
            await gates.queue.get()  # the test lets each step go once it saw the last one
            await ctx.save(progress=progress, stage=stage, metrics={"step": stage})
        await gates.queue.get()
        return "done"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """The running API server and what tests need to talk to it."""

    app: App
    url: str
    db_url: str
    keys: dict[str, str]
    gates: Gates
    asgi: Any

    def client(self, who: str | None = None, headers: dict[str, str] | None = None) -> httpx.Client:
        """A client authenticated as ``who`` (a name from ``keys``), or with ``headers``."""
        if who:
            headers = {"Authorization": f"Bearer {self.keys[who]}"}
        return httpx.Client(base_url=self.url, headers=headers or {}, timeout=10)

    def aclient(self, who: str | None = None) -> httpx.AsyncClient:
        """Async twin of :meth:`client`."""
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL as the table owner (bypasses row-level security)."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def server(db_url: str) -> Iterator[Server]:
    """uvicorn serving ``create_app`` in a thread; keys for alice, bob and an admin."""
    app = App(db_url, migrate_on_start=False, lease_seconds=5, heartbeat_seconds=1,
              poll_seconds=0.2, http_heartbeat_seconds=0.5,
              metrics_token=METRICS_TOKEN)  # fmt: skip
    gates = Gates()
    register_types(app, gates)
    with app.pool().connection() as conn:
        keys = {
            "alice": create_key(conn, "alice", actor="test")[1],
            "bob": create_key(conn, "bob", actor="test")[1],
            "admin": create_key(conn, "root", admin=True, actor="test")[1],
        }
    asgi = create_app(app, max_body_bytes=64 * 1024)
    port = free_port()
    config = uvicorn.Config(asgi, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    wait_until(lambda: uv.started, 15, "uvicorn to start")
    try:
        yield Server(app, f"http://127.0.0.1:{port}", db_url, keys, gates, asgi)
    finally:
        uv.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop"
        app.close()


@pytest.fixture
def srv(server: Server) -> Server:
    """The server with an empty queue, rollup and audit log."""
    server.sql("TRUNCATE nightcrew.jobs, nightcrew.stats_minute, nightcrew.audit_log")
    return server
