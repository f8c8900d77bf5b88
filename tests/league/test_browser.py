"""The League page in real headless Chromium, against a real web process and worker
process: the Background Job Status table follows a run live (no reload), a failed run
gets its Retry button live, and Retry completes."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_FLAGS, shoot
from tests.league.helpers import load_small_league
from tests.league.processes import LeagueProcesses
from tests.procs import reaped

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def site(league_clean: str, tmp_path: Path) -> Iterator[tuple[str, LeagueProcesses]]:
    async def load() -> None:
        async with await psycopg.AsyncConnection.connect(league_clean, autocommit=True) as conn:
            await load_small_league(conn)

    asyncio.run(load())
    with reaped(LeagueProcesses(league_clean, tmp_path)) as procs:
        base = procs.web()
        procs.worker()
        yield base, procs


@pytest.fixture
def page(site: tuple[str, LeagueProcesses]) -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        pytest.skip("!!! BROWSER TEST SKIPPED: /usr/bin/chromium is missing !!!")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(base_url=site[0], viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)
        yield context.new_page()
        browser.close()


def test_the_status_table_is_live_and_retry_completes(
    page: Any, site: tuple[str, LeagueProcesses], admin_key: str
) -> None:
    url = site[1].url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO league.faults (function, permanent) VALUES ('update_power_ratings', true)"
        )
    page.goto("/login?next=/league")
    page.get_by_label("API key").fill(admin_key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/league")
    page.wait_for_selector("#runs[data-updated]", state="attached")  # the SSE stream is live
    assert page.locator("#runs tbody tr.empty").count() == 1  # still says so once live

    page.get_by_role("button", name="Refresh statistics").click()
    page.wait_for_url("**/league?msg=*")
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#runs .run-status.run-failed")  # pushed over SSE
    assert page.evaluate("window.notReloaded") is True
    row = page.locator("#runs tbody tr").first
    row.locator("summary").click()
    assert "update_power_ratings: failed" in row.inner_text()
    shoot(page, "league-failed")

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DELETE FROM league.faults")
    row.get_by_role("button", name="Retry").click()
    page.wait_for_url("**/league?msg=*")
    page.evaluate("window.notReloaded = true")
    page.wait_for_selector("#runs tbody tr:first-child .run-status.run-completed")
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#runs tbody tr").count() == 2
    shoot(page, "league")
