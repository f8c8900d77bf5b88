"""The dashboard's Queues page: queues with their state for every user; pause, resume and
the Limits section for admins only, through CSRF-protected forms, audited."""

from __future__ import annotations

import psycopg
import pytest

from tests.http import test_dashboard_security as security
from tests.http.test_dashboard_security import Site, browser, csrf_of, get, login, post

# The dashboard tests' fixtures: API keys of alice, bob and an admin; the Apps serving.
keys = security.keys
site = security.site


@pytest.fixture(autouse=True)
def empty(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs, nightcrew.audit_log, nightcrew.queue_pauses,"
                     " nightcrew.limits, nightcrew.limit_slots")  # fmt: skip


async def test_admin_pauses_and_resumes_from_the_queues_page(site: Site) -> None:
    site.dev.enqueue("demo.noop", {}, delay=3600)
    site.dev.set_limit("places", rate="10/s", concurrency=3)
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["admin"])
        page = await get(client, "/queues", sid)
        assert page.status_code == 200
        assert 'data-queue="default"' in page.text and "Running" in page.text
        assert 'data-limit="places"' in page.text and "10/s" in page.text
        token = csrf_of(page)
        refused = await post(client, "/queues/default/pause", sid, {"csrf": "forged"})
        assert refused.status_code == 403
        paused = await post(client, "/queues/default/pause", sid, {"csrf": token})
        assert paused.status_code == 303
        page = await get(client, "/queues", sid)
        assert "<strong>Paused</strong>" in page.text and "/queues/default/resume" in page.text
        resumed = await post(client, "/queues/default/resume", sid, {"csrf": token})
        assert resumed.status_code == 303
        set_ = await post(client, "/limits", sid,
                          {"csrf": token, "key": "hunter", "rate": "5/s"})  # fmt: skip
        assert set_.status_code == 303
        bad = await post(client, "/limits", sid, {"csrf": token, "key": "x", "rate": "fast"})
        assert bad.status_code == 303  # back to the page with the message, nothing changed
        cleared = await post(client, "/limits", sid,
                             {"csrf": token, "key": "places", "action": "clear"})  # fmt: skip
        assert cleared.status_code == 303
    assert [(i.key, i.rate, i.overridden) for i in site.dev.limits()] == [
        ("hunter", "5/s", True), ("places", None, False),
    ]  # fmt: skip
    actions = site.sql("SELECT actor, action, target FROM nightcrew.audit_log ORDER BY id")
    assert actions == [
        ("root", "queue.pause", "queue:default"),
        ("root", "queue.resume", "queue:default"),
        ("root", "limit.set", "limit:hunter"),
        ("root", "limit.clear", "limit:places"),
    ]


async def test_users_see_queues_but_neither_actions_nor_limits(site: Site) -> None:
    site.dev.set_limit("places", rate="10/s")
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["alice"])
        page = await get(client, "/queues", sid)
        assert page.status_code == 200 and 'data-queue="default"' in page.text
        assert "/pause" not in page.text and "places" not in page.text
        token = csrf_of(await get(client, "/", sid))
        for path, form in [("/queues/default/pause", {}), ("/limits", {"key": "places",
                           "action": "clear"})]:  # fmt: skip
            refused = await post(client, path, sid, {"csrf": token, **form})
            assert refused.status_code == 403, path
    assert site.sql("SELECT count(*) FROM nightcrew.queue_pauses") == [(0,)]
    assert site.sql("SELECT count(*) FROM nightcrew.audit_log WHERE action ~ '^(queue|limit)'") \
        == [(0,)]  # fmt: skip
