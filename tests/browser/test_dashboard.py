"""The dashboard in real headless Chromium: log in, live progress, dead letter, schedules,
isolation, CSRF, and the estimating pages added through the extension point."""

from __future__ import annotations

import json
import re
from typing import Any

from nightcrew.jobs import Job
from tests.browser.conftest import Dash, login, shoot
from tests.support import wait_until


def bar_value(page: Any, selector: str) -> float:
    """The value of the first <progress> under ``selector``."""
    return float(page.eval_on_selector(f"{selector} progress", "el => el.value"))


def wait_bar(page: Any, selector: str, value: float) -> None:
    """Wait (in the browser, no reload) until that bar shows ``value``."""
    page.wait_for_function(
        "([sel, v]) => { const p = document.querySelector(sel + ' progress');"
        " return p && Math.abs(p.value - v) < 0.01; }",
        arg=[selector, value],
    )


def job_of(dash: Dash, job_id: Any) -> Job:
    job = dash.app.get_job(job_id)
    assert job is not None
    return job


def test_login_form_sets_an_httponly_session_cookie(context: Any, dash: Dash) -> None:
    page = context.new_page()
    page.goto("/jobs")
    assert "/login" in page.url  # no session: the form, coming back to /jobs afterwards
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Log in").click()
    assert page.get_by_role("alert").inner_text().startswith("That key is not valid")
    shoot(page, "login")
    page.goto("/login?next=/jobs")
    page.get_by_label("API key").fill(dash.keys["alice"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/jobs")
    (cookie,) = [c for c in context.cookies() if c["name"] == "nightcrew_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["value"] != dash.keys["alice"]  # a session id, never the API key
    assert page.evaluate("document.cookie") == ""  # invisible to scripts


def test_a_slow_job_bar_reaches_100_live_without_reloads(context: Any, dash: Dash) -> None:
    page = context.new_page()
    login(page, dash, "alice")
    page.goto("/")
    page.evaluate("window.__sameDocument = true")
    job_id = dash.app.enqueue("demo.slow", {"steps": 4}, user_id="alice")
    dash.gate.release()
    row = f'#running [data-job="{job_id}"]'
    wait_bar(page, row, 25)  # the overview's one stream added the row and moved its bar
    label = page.inner_text(f"{row} .progress-label")
    # Running with progress: the time remaining from its own rate (seed 000's wording).
    assert re.fullmatch(r"Enriching contacts \(25% - \d+ s remaining, 1/4, \$0\.15\)", label), label
    assert page.get_attribute(f"{row} progress", "aria-valuenow") == "25"
    shoot(page, "overview")
    page.click(f"{row} a")
    page.wait_for_url(f"**/jobs/{job_id}")
    page.evaluate("window.__sameDocument = true")
    wait_bar(page, "[data-live-job]", 25)
    for step in (50, 75, 100):
        dash.gate.release()
        wait_bar(page, "[data-live-job]", step)
    page.wait_for_selector("#job-status .status-completed")
    assert page.evaluate("window.__sameDocument") is True  # updated in place, never reloaded
    assert "Enriching contacts... 100% (4/4, $0.60)" in page.inner_text("[data-live-job]")
    assert '"enriched": 4' in page.inner_text("#job-result")
    assert "stage: Enriching contacts" in page.inner_text("#timeline")
    shoot(page, "job")
    page.goto("/")  # finished: gone from the running list
    assert page.locator(row).count() == 0


def test_retry_a_failed_job_from_the_dead_letter(context: Any, dash: Dash) -> None:
    job_id = dash.app.enqueue("demo.flaky", {}, user_id="alice")
    wait_until(lambda: job_of(dash, job_id).status == "failed", 15, "the job to fail")
    page = context.new_page()
    login(page, dash, "alice")
    page.goto("/dead")
    row = page.locator(f'tr[data-job="{job_id}"]')
    assert "upstream API said 503" in row.inner_text()
    shoot(page, "dead-letter")
    page.goto(f"/jobs/{job_id}")
    # The owner sees the attempt's error, not the worker's traceback (admins only).
    assert "RuntimeError: upstream API said 503" in page.inner_text("details summary")
    assert page.locator("pre.traceback").count() == 0
    assert "Traceback" not in page.inner_text("main")
    admin = context.browser.new_context(base_url=dash.url)
    seen = admin.new_page()
    login(seen, dash, "admin")
    seen.goto(f"/jobs/{job_id}")
    assert "Traceback" in seen.inner_text("pre.traceback")
    admin.close()
    page.goto("/dead")
    row.get_by_role("button", name="Retry").click()
    assert "1 job(s) sent back to the queue" in page.get_by_role("status").inner_text()
    wait_until(lambda: job_of(dash, job_id).status == "completed", 15, "the retried job")
    page.goto(f"/jobs/{job_id}")
    assert "alice" in page.inner_text("section:has(h2:text('Audit'))")
    actions = dash.sql(
        "SELECT actor, action FROM nightcrew.audit_log WHERE target = %s", (str(job_id),)
    )
    assert actions == [("alice", "job.retry")]


def test_retry_all_and_discard_ask_for_confirmation(context: Any, dash: Dash) -> None:
    ids = [dash.app.enqueue("demo.flaky", {}, user_id="bob") for _ in range(2)]
    wait_until(lambda: all(job_of(dash, i).status == "failed" for i in ids), 15, "failures")
    page = context.new_page()
    login(page, dash, "bob")
    page.goto("/dead")
    dialogs: list[str] = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Discard all").click()
    assert dialogs and "Discard" in dialogs[0]
    assert all(job_of(dash, i).status == "failed" for i in ids)  # dismissed: nothing happened
    page.once("dialog", lambda d: d.accept())
    page.locator(f'tr[data-job="{ids[0]}"]').get_by_role("button", name="Discard").click()
    assert "1 failed job(s) discarded" in page.get_by_role("status").inner_text()
    assert dash.app.get_job(ids[0]) is None
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Retry all").click()
    assert "1 job(s) sent back" in page.get_by_role("status").inner_text()
    wait_until(lambda: job_of(dash, ids[1]).status == "completed", 15, "the retried job")


def test_admin_toggles_a_schedule_and_users_cannot(context: Any, dash: Dash) -> None:
    page = context.new_page()
    login(page, dash, "admin")
    page.goto("/schedules")
    row = page.locator('tr[data-schedule="estimating.capture_price_snapshot"]')
    assert "Every day at 02:00 UTC" in row.inner_text()
    switch = row.get_by_role("switch")
    assert switch.get_attribute("aria-checked") == "true"
    shoot(page, "schedules")
    switch.click()
    page.wait_for_url("**/schedules?msg=*")
    assert row.get_by_role("switch").get_attribute("aria-checked") == "false"
    (info,) = [
        s for s in dash.app.schedules_list() if s.name == "estimating.capture_price_snapshot"
    ]
    assert info.enabled is False
    row.get_by_role("switch").click()
    page.wait_for_selector('tr[data-schedule="estimating.capture_price_snapshot"] '
                           '[role=switch][aria-checked="true"]')  # fmt: skip
    audit = dash.sql("SELECT actor, action, before -> 'enabled', after -> 'enabled'"
                     " FROM nightcrew.audit_log WHERE target ="
                     " 'schedule:estimating.capture_price_snapshot' ORDER BY id")  # fmt: skip
    assert audit == [("root", "schedule.update", True, False),
                     ("root", "schedule.update", False, True)]  # fmt: skip
    user = context.browser.new_context(base_url=dash.url)
    other = user.new_page()
    login(other, dash, "alice")
    other.goto("/schedules")
    assert other.get_by_role("switch").count() == 0
    csrf = other.locator("input[name=csrf]").first.get_attribute("value")
    answer = user.request.post("/schedules/estimating.weekly_report/disable",
                               form={"csrf": csrf}, max_redirects=0)  # fmt: skip
    assert answer.status == 403
    user.close()


def test_another_users_job_is_not_visible(context: Any, dash: Dash) -> None:
    bobs = dash.app.enqueue("demo.slow", {"steps": 1}, user_id="bob", delay=3600)
    alices = dash.app.enqueue("demo.slow", {"steps": 1}, user_id="alice", delay=3600)
    page = context.new_page()
    login(page, dash, "alice")
    page.goto("/jobs?status=pending")
    assert page.locator(f'a[href="/jobs/{alices}"]').count() == 1
    assert page.locator(f'a[href="/jobs/{bobs}"]').count() == 0
    response = page.goto(f"/jobs/{bobs}")
    assert response is not None and response.status == 404
    assert "not yours to see" in page.inner_text("main")
    shoot(page, "jobs")
    admin = context.browser.new_context(base_url=dash.url)
    seen = admin.new_page()
    login(seen, dash, "admin")
    seen.goto("/jobs?status=pending")
    assert seen.locator(f'a[href="/jobs/{bobs}"]').count() == 1
    admin.close()
    dash.app.cancel(bobs)
    dash.app.cancel(alices)


def test_forms_without_the_csrf_token_are_refused(context: Any, dash: Dash) -> None:
    job_id = dash.app.enqueue("demo.slow", {"steps": 1}, user_id="alice", delay=3600)
    page = context.new_page()
    login(page, dash, "alice")
    answer = context.request.post(f"/jobs/{job_id}/cancel", form={"csrf": "forged"},
                                  max_redirects=0)  # fmt: skip
    assert answer.status == 403
    assert job_of(dash, job_id).status == "pending"
    page.goto(f"/jobs/{job_id}")
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_selector("#job-status .status-cancelled")


def test_estimating_pages_trend_chart_and_live_bulk_update(context: Any, dash: Dash) -> None:
    page = context.new_page()
    login(page, dash, "alice")
    page.get_by_role("link", name="Estimating", exact=True).click()  # the app's nav entry
    page.wait_for_url("**/estimating")
    page.goto("/estimating/items/REBAR-12MM")
    page.wait_for_function("() => window.Chart && Chart.getChart('trend-chart')")
    points = page.evaluate("Chart.getChart('trend-chart').data.datasets[0].data.length")
    assert points == 6
    jump = page.locator("#trend-table tr.jump")  # the steel jump, highlighted
    assert jump.count() == 1
    rise = float(re.search(r"\+(\d+\.\d) %", jump.inner_text()).group(1))  # type: ignore[union-attr]
    assert 12 < rise < 25  # steel +22 %, diluted by the item's other costs
    assert f"Biggest move: +{rise} %" in page.inner_text(".jump-note")
    shoot(page, "estimating-trend")
    page.goto("/estimating")
    assert page.get_by_role("button", name="Update prices").count() == 0  # admins only
    page.context.clear_cookies()
    login(page, dash, "admin")
    page.goto("/estimating")
    page.get_by_label("Change (%)").fill("5")
    page.get_by_label("Category").select_option("concrete")
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Update prices").click()
    page.wait_for_url("**/estimating?job=*")
    wait_bar(page, "[data-live-job]", 100)
    page.wait_for_selector("#job-status .status-completed")
    shoot(page, "estimating-bulk")


def test_pages_fit_a_phone_screen(browser: Any, dash: Dash) -> None:
    phone = browser.new_context(base_url=dash.url, viewport={"width": 390, "height": 844})
    page = phone.new_page()
    login(page, dash, "admin")
    for path, name in (("/", "phone-overview"), ("/dead", None), ("/schedules", None)):
        page.goto(path)
        width = page.evaluate("document.body.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
        if name:
            shoot(page, name)
    phone.close()


BREAKOUT = ('</script><base href="http://evil.example/">'
            '<meta http-equiv="refresh" content="0;url=/notifications?pwned=1">')  # fmt: skip


def assert_nothing_injected(page: Any, path: str) -> None:
    """No element from the JSON block reached the DOM, and the page did not navigate."""
    assert page.evaluate("document.querySelectorAll('base, meta[http-equiv]').length") == 0
    assert page.evaluate("document.baseURI") == page.url
    assert page.url.endswith(path), page.url


def test_a_payload_cannot_inject_html_into_the_admins_job_page(context: Any, dash: Dash) -> None:
    payload = {"note": BREAKOUT, "amp": "a & b", "quote": "it's"}
    job_id = dash.app.enqueue("demo.slow", payload, user_id="alice", delay=3600)
    page = context.new_page()
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    login(page, dash, "admin")
    page.goto(f"/jobs/{job_id}")
    page.wait_for_load_state("load")
    assert_nothing_injected(page, f"/jobs/{job_id}")
    live = page.evaluate("JSON.parse(document.getElementById('job-data').textContent)")
    assert live["payload"] == payload and live["id"] == str(job_id)
    assert json.dumps(BREAKOUT) in page.inner_text("pre")  # shown as text
    # The live stream (which starts from that JSON) delivered its first event in place.
    page.wait_for_selector(f'[data-progress-for="{job_id}"][data-status="pending"]')
    assert not [url for url in navigations if "pwned" in url or "evil" in url]
    assert page.url.endswith(f"/jobs/{job_id}")
    dash.app.cancel(job_id)


def test_an_item_unit_cannot_break_out_of_the_trend_chart(context: Any, dash: Dash) -> None:
    ((code, unit),) = dash.sql("SELECT code, unit FROM estimating.items WHERE code <> "
                               "'REBAR-12MM' ORDER BY code LIMIT 1")  # fmt: skip
    dash.sql("UPDATE estimating.items SET unit = %s WHERE code = %s", (BREAKOUT, code))
    try:
        page = context.new_page()
        login(page, dash, "admin")
        page.goto(f"/estimating/items/{code}")
        page.wait_for_load_state("load")
        assert_nothing_injected(page, f"/estimating/items/{code}")
        chart = page.evaluate("JSON.parse(document.getElementById('trend-data').textContent)")
        assert chart["datasets"][0]["label"] == f"average price per {BREAKOUT}"
        page.wait_for_function("() => window.Chart && Chart.getChart('trend-chart')")
    finally:
        dash.sql("UPDATE estimating.items SET unit = %s WHERE code = %s", (unit, code))
