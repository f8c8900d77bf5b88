"""The weekly usage report (Sunday 00:00, readable over the API with only the reader's
project rows) and the monthly archive of old estimates (checkpointed batches: a worker
SIGKILLed mid-run resumes elsewhere and archives every estimate exactly once; an archived
estimate still answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from nightcrew import App, JobStatus
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import project, simple_items, use
from tests.estimating.test_bulk import kill_worker_after, scalar
from tests.estimating.test_dashboard_pages import dashboard


@dataclass
class Api:
    """The estimating App served in-process, a key per user."""

    client: httpx.AsyncClient
    keys: dict[str, str]

    async def get(self, who: str, path: str) -> httpx.Response:
        auth = {"Authorization": f"Bearer {self.keys[who]}"}
        return await self.client.get(f"/api/estimating{path}", headers=auth)


@pytest.fixture
async def api(est_app: App, est_clean: str) -> AsyncIterator[Api]:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        keys = {who: create_key(sync, who)[1] for who in ("alice", "bob", "carol")}
        keys["admin"] = create_key(sync, "root", admin=True)[1]
    transport = httpx.ASGITransport(app=create_app(est_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, keys)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def week_of_usage(conn: psycopg.AsyncConnection[Any]) -> None:
    """The week of Sunday 2026-11-01 to Saturday 2026-11-07, and usage either side of it."""
    await simple_items(conn, ["WALL", "POST", "SLAB", "ROOF"])
    await project(conn, "ALPHA", "alice")
    await project(conn, "BETA", "bob")
    await use(conn, "WALL", "ALPHA", "E0", at("2026-10-20T09:00"), "9")  # the week before
    await use(conn, "WALL", "ALPHA", "E1", at("2026-11-02T09:00"), "3")
    await use(conn, "POST", "ALPHA", "E1", at("2026-11-02T09:05"), "2")
    await use(conn, "WALL", "ALPHA", "E2", at("2026-11-03T10:00"), "1")
    await use(conn, "WALL", "BETA", "E1", at("2026-11-07T23:59"), "4")
    await use(conn, "SLAB", "BETA", "E1", at("2026-11-07T23:59"), "1")
    await use(conn, "ROOF", "BETA", "E2", at("2026-11-08T00:00"), "5")  # the week after


async def test_the_weekly_report_runs_sunday_midnight_and_says_what_the_week_held(
    est_app: App, conn: psycopg.AsyncConnection[Any], api: Api
) -> None:
    est_app.sync_schedules()
    crons = {s.name: s.cron for s in est_app.schedules_list()}
    assert crons["estimating.weekly_report"] == "0 0 * * 0"  # the seed: Sunday 00:00
    assert crons["estimating.archive_usage"] == "0 0 1 * *"  # the 1st of the month, 00:00
    await week_of_usage(conn)
    job_id = await est_app.aenqueue("estimating.weekly_report", {"end": "2026-11-08"})
    await est_app.worker().run_until_idle(timeout=30)
    job = await est_app.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job

    admin = (await api.get("admin", "/reports/weekly?week=2026-11-04")).json()
    assert (admin["week_start"], admin["week_end"]) == ("2026-11-01", "2026-11-08")
    assert (admin["usage_rows"], admin["estimates"], admin["projects"], admin["items"]) == (
        5, 3, 2, 3)  # fmt: skip
    assert [(t["code"], t["uses"], t["projects"], t["quantity"]) for t in admin["top_items"]] == [
        ("WALL", 3, 2, "8.0000"), ("POST", 1, 1, "2.0000"), ("SLAB", 1, 1, "1.0000")]  # fmt: skip
    # WALL was used the week before: not new. ROOF only after the week: unused in it.
    assert [n["code"] for n in admin["new_items"]] == ["POST", "SLAB"]
    assert (admin["unused_count"], admin["unused_items"]) == (1, ["ROOF"])
    rows = [(p["project_id"], p["uses"], p["estimates"], p["items"], p["quantity"])
            for p in admin["by_project"]]  # fmt: skip
    assert rows == [("ALPHA", 3, 2, 2, "6.0000"), ("BETA", 2, 1, 2, "5.0000")]

    for who, visible in (("alice", ["ALPHA"]), ("bob", ["BETA"]), ("carol", [])):
        mine = (await api.get(who, "/reports/weekly?week=2026-11-01")).json()
        assert [p["project_id"] for p in mine["by_project"]] == visible, who
        assert mine["top_items"] == admin["top_items"]  # the library's figures are shared
    latest = await api.get("carol", "/reports/weekly")
    assert latest.status_code == 200 and latest.json()["week_start"] == "2026-11-01"
    missing = await api.get("alice", "/reports/weekly?week=2026-10-20")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "week"
    bad = await api.get("alice", "/reports/weekly?week=last-week")
    assert bad.status_code == 422 and "week" in bad.text

    async with dashboard(est_app, api.keys["alice"]) as client:  # the Estimating page
        page = (await client.get("/estimating")).text
    assert "5 item uses in 3 estimates, 3 items." in page
    assert "<td>ALPHA <small>ALPHA</small></td><td>3</td><td>2</td><td>2</td>" in page
    assert "BETA" not in page  # bob's project: not alice's to see
    assert "<strong>New items:</strong> POST, SLAB." in page
    assert "<strong>Unused items:</strong> 1 (ROOF)." in page


OLD = 40
CUTOFF = "2025-10-01T00:00:00+00:00"


async def old_and_new_estimates(conn: psycopg.AsyncConnection[Any]) -> None:
    """40 estimates of 2025 (two lines each), one with an old and a recent line, one new."""
    await simple_items(conn, ["WALL", "POST"])
    await project(conn, "ALPHA", "alice")
    start = at("2025-01-06T08:00")
    for n in range(OLD):
        when = start + timedelta(hours=n)
        await use(conn, "WALL", "ALPHA", f"OLD-{n:02}", when, "2")
        await use(conn, "POST", "ALPHA", f"OLD-{n:02}", when + timedelta(minutes=1), "3.5")
    await use(conn, "WALL", "ALPHA", "MIX", start, "1")
    await use(conn, "POST", "ALPHA", "MIX", at("2026-11-01T08:00"), "1")
    await use(conn, "WALL", "ALPHA", "NEW", at("2026-11-02T08:00"), "1")


async def test_a_killed_archive_resumes_and_archives_every_old_estimate_once(
    est_app: App, conn: psycopg.AsyncConnection[Any], est_clean: str, api: Api, tmp_path: Path
) -> None:
    await old_and_new_estimates(conn)
    job_id = await est_app.aenqueue("estimating.archive_usage", {"before": CUTOFF, "batch": 5})
    archived = "SELECT (checkpoint->>'estimates')::int FROM nightcrew.jobs WHERE id = %s"
    kill_worker_after(est_clean, tmp_path, archived, job_id, 10)
    assert scalar(est_clean, archived, (job_id,)) < OLD, "finished before the kill"

    await est_app.worker().run_until_idle(timeout=60)
    job = await est_app.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job
    assert job.attempts == 2
    assert (job.result["estimates"], job.result["lines"]) == (OLD, 2 * OLD)
    assert job.result["summary"] == f"{OLD} estimates and {2 * OLD} lines archived"
    cur = await conn.execute("SELECT estimate_id FROM estimating.estimates ORDER BY 1")
    assert [r[0] for r in await cur.fetchall()] == ["MIX", "NEW"]  # MIX has a recent line
    cur = await conn.execute(
        "SELECT count(*), count(DISTINCT estimate_id) FROM estimating.estimates_archive"
    )
    assert await cur.fetchone() == (OLD, OLD)
    cur = await conn.execute("SELECT count(*), sum(quantity) FROM estimating.usage_archive")
    assert await cur.fetchone() == (2 * OLD, OLD * (2 + 3.5))
    cur = await conn.execute("SELECT count(*) FROM estimating.usage")
    assert await cur.fetchone() == (3,)  # MIX's two lines (one old) and NEW's

    old = await api.get("alice", "/projects/ALPHA/estimates/OLD-07")
    assert old.status_code == 200, old.text
    body = old.json()
    assert body["archived"] is True and body["archived_at"] is not None
    assert [(line["code"], line["quantity"]) for line in body["lines"]] == [
        ("WALL", "2.0000"), ("POST", "3.5000")]  # fmt: skip
    live = (await api.get("alice", "/projects/ALPHA/estimates/MIX")).json()
    assert live["archived"] is False and len(live["lines"]) == 2
    assert (await api.get("bob", "/projects/ALPHA/estimates/OLD-07")).status_code == 404
    unknown = await api.get("alice", "/projects/ALPHA/estimates/NOPE")
    assert unknown.status_code == 404 and unknown.json()["error"]["field"] == "estimate_id"
