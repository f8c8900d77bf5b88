"""The Prospecting page in real headless Chromium against a real server (uvicorn), a real
worker and the sandbox: submit the form, watch the bar, stage, metrics and cost move live
(over SSE, without a reload), then the results table and the CSV download."""

from __future__ import annotations

import asyncio
import csv
import io
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import uvicorn

from nightcrew import App
from nightcrew.http import create_app
from nightcrew.keys import create_key
from prospecting.app import build_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.http.conftest import free_port
from tests.prospecting.conftest import SandboxProcess
from tests.support import wait_until

SLOW_RATES = {"places": "20/s", "finder": "10/s", "verifier": "10/s"}
"""Slow enough that the campaign runs for a few seconds in front of the browser."""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A quick sandbox (20 ms per call, 2 % errors, 1 % 429s for 0.2 s): the page's
    campaigns are paced by their rate limits."""
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox") / "sandbox.log",
                             latency_ms=20, error_rate=0.02, rate_429=0.01,
                             retry_after=0.2)  # fmt: skip
    yield process
    process.stop()


@dataclass
class Site:
    """The running server and worker."""

    app: App
    url: str
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(pro_db: str, sandbox: SandboxProcess) -> Iterator[Site]:
    app = build_app(pro_db, prospecting=sandbox.settings(SLOW_RATES), migrate_on_start=False,
                    lease_seconds=5, heartbeat_seconds=1, poll_seconds=0.2,
                    http_heartbeat_seconds=2, dev_insecure_cookies=True)  # fmt: skip
    with psycopg.connect(pro_db, autocommit=True) as conn:
        keys = {who: create_key(conn, who, actor="test")[1] for who in ("alice", "bob")}
    port = free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning",
                            timeout_graceful_shutdown=2)  # fmt: skip
    server = uvicorn.Server(config)
    web = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    web.start()
    worker = app.worker(concurrency=2)
    loop = asyncio.new_event_loop()

    def work() -> None:
        loop.run_until_complete(worker.run())
        loop.run_until_complete(app.aclose())

    working = threading.Thread(target=work, name="worker", daemon=True)
    working.start()
    wait_until(lambda: server.started, 15, "uvicorn to start")
    try:
        yield Site(app, f"http://127.0.0.1:{port}", keys)
    finally:
        loop.call_soon_threadsafe(worker.stop)
        working.join(20)
        server.should_exit = True
        web.join(15)
        loop.close()
        app.close()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("!!! BROWSER TESTS SKIPPED: /usr/bin/chromium is missing !!!")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


def logged_in(browser: Any, site: Site, who: str) -> Any:
    """A fresh browser context logged in as ``who``, and its page."""
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)  # fmt: skip
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    page.get_by_label("API key").fill(site.keys[who])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def test_submit_watch_live_and_download_the_leads(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "alice")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/prospecting")
    page.get_by_label("Business type").fill("bakery")
    page.get_by_label("Location").fill("Portland")
    page.get_by_label("Max results").fill("25")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/prospecting/campaigns/*")
    assert "campaign started" in page.locator(".flash").inner_text()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Live: the bar and the metrics move while the page stays the same document.
    page.wait_for_function(
        "() => window.__sameDocument && document.getElementById('campaign-bar').value > 50"
        " && document.getElementById('campaign-stage').textContent.includes('enriching')"
    )
    enriched = page.locator('[data-metric="leads_enriched"]')
    page.wait_for_function(
        "() => Number(document.querySelector('[data-metric=\"leads_enriched\"]').textContent) > 0"
    )
    cost = page.locator('[data-metric="total_cost"]').inner_text()
    assert cost.startswith("$") and float(cost[1:]) > 0
    assert int(page.locator('[data-metric="businesses_found"]').inner_text()) == 25
    assert int(enriched.inner_text()) >= 1

    # Finished: the page reloads itself into the results.
    page.wait_for_selector("#leads", timeout=60_000)
    assert page.locator("#campaign-status .status").inner_text() == "completed"
    rows = page.locator("#leads tbody tr")
    qualified = int(page.locator('[data-metric="qualified_leads"]').inner_text())
    assert rows.count() == qualified > 0
    assert page.locator('[data-metric="leads_enriched"]').inner_text() == str(qualified)
    assert "25 businesses" in page.locator("#campaign-summary").inner_text()

    with page.expect_download() as info:
        page.locator("#csv-link").click()
    text = Path(info.value.path()).read_text()
    leads = list(csv.DictReader(io.StringIO(text)))
    assert len(leads) == qualified
    assert leads[0]["name"] == page.locator("#leads tbody tr td").first.inner_text()
    assert errors == []

    # Bob sees neither the campaign nor its CSV.
    other = logged_in(browser, site, "bob")
    campaign_url = page.url.replace(site.url, "")
    assert other.goto(campaign_url).status == 404
    assert other.request.get(f"{campaign_url}/leads.csv").status == 404
    other.goto("/prospecting")
    assert "No campaigns yet." in other.locator("main").inner_text()


def test_a_bad_form_says_which_field(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "alice")
    page.goto("/prospecting")
    page.get_by_label("Business type").fill("bakery")
    page.get_by_label("Location").fill("   ")  # passes the browser's check, not ours
    page.get_by_label("Max results").fill("10")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/prospecting?**")
    assert "location: " in page.locator(".flash").inner_text()


def test_the_cancel_button_stops_the_campaign_and_keeps_its_leads(browser: Any, site: Site) -> None:
    page = logged_in(browser, site, "alice")
    page.goto("/prospecting")
    page.get_by_label("Business type").fill("florist")
    page.get_by_label("Location").fill("Bristol")
    page.get_by_label("Max results").fill("60")
    page.get_by_role("button", name="Start campaign").click()
    page.wait_for_url("**/prospecting/campaigns/*")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-metric=\"leads_enriched\"]').textContent) > 0"
    )
    page.get_by_role("button", name="Cancel campaign").click()
    page.wait_for_selector("#leads", timeout=30_000)  # reloaded once the job stopped
    assert page.locator("#campaign-status .status").inner_text() == "cancelled"
    assert "cancelled" in page.locator("#campaign-summary").inner_text()
    qualified = int(page.locator('[data-metric="qualified_leads"]').inner_text())
    enriched = int(page.locator('[data-metric="leads_enriched"]').inner_text())
    assert page.locator("#leads tbody tr").count() == qualified
    assert 0 < enriched < qualified, "stopped part-way, the leads found kept"
    assert page.get_by_role("button", name="Cancel campaign").count() == 0
