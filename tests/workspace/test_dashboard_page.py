"""The "Workspace" dashboard page in real headless Chromium against a real server and
worker: documents with their index/embedding status, the search box in its three modes,
a sheet with values and errors, and nothing of alice's for bob."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from nightcrew import App, create_api_key
from nightcrew.http import create_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, shoot
from tests.http.conftest import free_port
from tests.support import wait_until
from tests.workspace.conftest import _MODEL, FAST
from tests.workspace.helpers import insert_documents, scalar
from tests.workspace.test_documents import CORPUS
from workspace import sheets
from workspace.app import install


@pytest.fixture(scope="module")
def served(ws_db: str) -> Iterator[tuple[str, dict[str, str]]]:
    """The workspace App served by uvicorn, a worker in another thread, alice's data."""
    app = App(ws_db, **{**FAST, "dev_insecure_cookies": True})
    install(app, embedder=_MODEL)
    app.sync_job_types()
    with psycopg.connect(ws_db, autocommit=True) as conn:
        keys = {user: create_api_key(conn, user)[1] for user in ("alice", "bob")}
    insert_documents(ws_db, "alice", CORPUS)
    asyncio.run(_alice_sheet(ws_db))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(app),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    web = threading.Thread(target=server.run, daemon=True)
    web.start()
    worker = app.worker(concurrency=4)
    loop = asyncio.new_event_loop()
    working = threading.Thread(target=lambda: loop.run_until_complete(worker.run()), daemon=True)
    working.start()
    wait_until(lambda: server.started, 15, "uvicorn to start")
    done = "SELECT count(*) FROM nightcrew.jobs WHERE status::text <> 'completed'"
    wait_until(lambda: scalar(ws_db, done) == 0, 60, "the documents to be indexed and embedded")
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        loop.call_soon_threadsafe(worker.stop)
        working.join(20)
        server.should_exit = True
        web.join(15)
        loop.run_until_complete(app.aclose())
        loop.close()
        app.close()


async def _alice_sheet(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute("SELECT set_config('nightcrew.user_id', 'alice', true)")
        await sheets.put_cell(conn, "costs", "A1", None, Decimal("12.5"))
        await sheets.put_cell(conn, "costs", "B1", "=A1*2", None)
        await sheets.put_cell(conn, "costs", "C1", "=B1/0", None)
        await conn.commit()


@pytest.fixture(scope="module")
def browser(served: tuple[str, dict[str, str]]) -> Iterator[Any]:
    """Debian's Chromium through Playwright (skipped loudly when missing)."""
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("!!! BROWSER TESTS SKIPPED: /usr/bin/chromium is missing !!!")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def open_as(browser: Any, base: str, key: str) -> Any:
    """A fresh profile logged in with ``key``, on the Workspace page."""
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    page.get_by_role("link", name="Workspace").click()
    page.wait_for_url("**/workspace")
    return page


def test_the_workspace_page_shows_status_search_and_a_sheet(
    browser: Any, served: tuple[str, dict[str, str]]
) -> None:
    base, keys = served
    page = open_as(browser, base, keys["alice"])
    table = page.locator("#documents").inner_text()
    assert "Fixing cars at home" in table and table.count("embedded") == len(CORPUS)
    assert "pending" not in table
    page.get_by_label("Query").fill("automobile repair")
    page.get_by_label("Mode").select_option("text")
    page.get_by_role("button", name="Search").click()
    text_hits = page.locator("#search-results").inner_text()
    assert "Automobile repair shop hours" in text_hits and "Fixing cars" not in text_hits
    page.get_by_label("Mode").select_option("semantic")
    page.get_by_role("button", name="Search").click()
    assert "Fixing cars at home" in page.locator("#search-results").inner_text()
    cells = page.locator("#cells").inner_text()
    assert "=A1*2" in cells and "25" in cells and "#DIV/0!" in cells
    assert page.get_by_text("Last recompute:").inner_text().count("-") >= 4  # a job id
    shoot(page, "workspace")
    page.context.close()


def test_bob_sees_nothing_of_alices(browser: Any, served: tuple[str, dict[str, str]]) -> None:
    base, keys = served
    page = open_as(browser, base, keys["bob"])
    assert "No documents." in page.locator("#documents").inner_text()
    assert "No sheets yet" in page.content()
    page.goto("/workspace?q=fixing+cars&mode=hybrid&sheet=costs")
    assert "No match." in page.locator("#search-results").inner_text()
    assert "unknown sheet" in page.content()
    page.context.close()
