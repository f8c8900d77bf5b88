"""Real headless Chromium (Debian's) against a real server, worker and database.

One server per module: the estimating App (so its dashboard pages are there) plus two test
job types, uvicorn in a thread, a worker on its own event loop in another thread, keys for
alice, bob and an admin, and a little estimating demo data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from estimating.app import build_app
from estimating.demo_data import DemoSize, load_demo
from estimating.popularity import aggregate_popularity
from nightcrew import App, JobContext
from nightcrew.db.migrate import migrate
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.http.conftest import free_port
from tests.support import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip
SCREENSHOTS = os.environ.get("NIGHTCREW_SCREENSHOTS")
"""A folder to save screenshots of the main pages in (tests/browser/screenshots.py)."""


@dataclass
class Dash:
    """The running dashboard and what tests need to drive it."""

    app: App
    url: str
    keys: dict[str, str]
    gate: threading.Semaphore
    failures: dict[str, int] = field(default_factory=dict)

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL as the table owner."""
        with psycopg.connect(self.app.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


def register_test_types(app: App, gate: threading.Semaphore, failures: dict[str, int]) -> None:
    """``demo.slow``: one progress step per gate release; ``demo.flaky``: fails its first
    run (``max_attempts=1``: straight to the dead letter), succeeds once retried."""

    @app.job("demo.slow")
    async def slow(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
        steps = int(payload.get("steps", 4))
        for done in range(1, steps + 1):
            released = await asyncio.to_thread(gate.acquire, True, 30)
            assert released, "the test never released the gate"
            metrics = {"done": done, "total": steps, "cost_usd": 0.15 * done}
            await ctx.save(progress=100 * done / steps, stage="Enriching contacts", metrics=metrics)
        return {"enriched": steps}

    @app.job("demo.flaky", max_attempts=1)
    async def flaky(ctx: JobContext, payload: dict[str, Any]) -> str:
        key = str(ctx.job.id)
        failures[key] = failures.get(key, 0) + 1
        if failures[key] == 1:
            raise RuntimeError("upstream API said 503")
        return "ok on retry"


def _load_estimating(url: str) -> None:
    async def load() -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            await load_demo(conn, DemoSize(items=150, projects=10, estimates=400))
            await aggregate_popularity(conn)

    asyncio.run(load())


@pytest.fixture(scope="module")
def dash(db_url: str) -> Iterator[Dash]:
    """Server and worker over the module's database."""
    migrate(db_url, package="estimating", schema="estimating")
    _load_estimating(db_url)
    # Served on plain http://127.0.0.1: the development setting lets the cookie lack Secure.
    app = build_app(db_url, migrate_on_start=False, lease_seconds=5, heartbeat_seconds=1,
                    poll_seconds=0.2, http_heartbeat_seconds=2,
                    dev_insecure_cookies=True)  # fmt: skip
    gate, failures = threading.Semaphore(0), {}
    register_test_types(app, gate, failures)
    app.sync_schedules()
    with app.pool().connection() as conn:
        keys = {
            "alice": create_key(conn, "alice", actor="test")[1],
            "bob": create_key(conn, "bob", actor="test")[1],
            "admin": create_key(conn, "root", admin=True, actor="test")[1],
        }
    port = free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    web = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    web.start()
    worker = app.worker(concurrency=4)
    loop = asyncio.new_event_loop()

    def work() -> None:
        loop.run_until_complete(worker.run())
        loop.run_until_complete(app.aclose())

    working = threading.Thread(target=work, name="worker", daemon=True)
    working.start()
    wait_until(lambda: server.started, 15, "uvicorn to start")
    try:
        yield Dash(app, f"http://127.0.0.1:{port}", keys, gate, failures)
    finally:
        for _ in range(20):
            gate.release()  # a slow job still waiting must not hold the worker
        loop.call_soon_threadsafe(worker.stop)
        working.join(20)
        server.should_exit = True
        web.join(15)
        assert not web.is_alive() and not working.is_alive(), "server or worker did not stop"
        loop.close()
        app.close()


@pytest.fixture(scope="module")
def browser(dash: Dash) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (skipped loudly when it is not installed).

    After ``dash``: Playwright's sync API runs an event loop in this thread, so the
    server's async setup must be done before it starts."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip(
            "!!! BROWSER TESTS SKIPPED: /usr/bin/chromium is missing "
            "(apt-get install chromium, or `make test` as root) !!!"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


@pytest.fixture
def context(browser: Any, dash: Dash) -> Iterator[Any]:
    """A fresh browser profile (no cookies) with a laptop-sized window."""
    ctx = browser.new_context(base_url=dash.url, viewport={"width": 1280, "height": 860})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def login(page: Any, dash: Dash, who: str) -> None:
    """Log in through the form as ``who``."""
    page.goto("/login")
    page.get_by_label("API key").fill(dash.keys[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)


def shoot(page: Any, name: str) -> None:
    """Save a screenshot of the page when NIGHTCREW_SCREENSHOTS names a folder."""
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)
