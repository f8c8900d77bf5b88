"""Who sees what in /api/estimating: project data belongs to the project's members (row-level
security through nightcrew's per-user role), the library is shared and written by admins;
workers, running as the table owner, still see everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import psycopg
import pytest

from estimating import prices, reports
from nightcrew import App, JobStatus
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import catalogue, item, project, rates, use

PROJECT_TABLES = ["projects", "project_rates", "estimates", "usage", "project_price_snapshots",
                  "calculations", "project_members", "usage_archive", "estimates_archive",
                  "project_cost_snapshots", "suggestion_offers"]  # fmt: skip
DAY = date(2026, 11, 2)


@dataclass
class Api:
    """The estimating App served in-process, with a client per user."""

    app: App
    client: httpx.AsyncClient
    keys: dict[str, str]

    async def call(self, who: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``method path`` as ``who`` (alice, bob, carol or admin)."""
        auth = {"Authorization": f"Bearer {self.keys[who]}"}
        return await self.client.request(method, f"/api/estimating{path}", headers=auth, **kwargs)


@pytest.fixture
async def api(est_app: App, est_clean: str) -> AsyncIterator[Api]:
    with psycopg.connect(est_clean, autocommit=True) as sync:
        keys = {who: create_key(sync, who, actor="test")[1] for who in ("alice", "bob", "carol")}
        keys["admin"] = create_key(sync, "root", admin=True, actor="test")[1]
    transport = httpx.ASGITransport(app=create_app(est_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(est_app, client, keys)


async def library(conn: psycopg.AsyncConnection[Any]) -> None:
    await catalogue(conn, materials=[("CEMENT", "10.00")])
    await item(conn, "WALL", materials=[{"code": "CEMENT", "quantity_per_unit": "2"}])


async def alice_and_bob_projects(api: Api, conn: psycopg.AsyncConnection[Any]) -> None:
    """Each creates a project over the API, with a rate, a usage row and a calculation."""
    await library(conn)
    for who, pid, rate in (("alice", "ALPHA", "12.00"), ("bob", "BETA", "14.00")):
        created = await api.call(who, "POST", "/projects", json={"id": pid, "name": pid})
        assert created.status_code == 201, created.text
        body = {"rates": [{"code": "CEMENT", "rate": rate, "effective_from": "2026-01-01"}]}
        stored = await api.call(who, "POST", f"/projects/{pid}/rates", json=body)
        assert stored.status_code == 201, stored.text
        used = await api.call(who, "POST", "/usage", json={
            "item_code": "WALL", "project_id": pid, "estimate_id": "E1", "quantity": "3",
            "used_at": "2026-11-01T10:00:00Z", "suggested": True})  # fmt: skip
        assert used.status_code == 201, used.text
        old = await api.call(who, "POST", "/usage", json={
            "item_code": "WALL", "project_id": pid, "estimate_id": "OLD", "quantity": "1",
            "used_at": "2025-01-01T10:00:00Z"})  # fmt: skip
        assert old.status_code == 201, old.text
        calc = await api.call(who, "POST", "/calculations", json={
            "project_id": pid, "items": [{"code": "WALL", "quantity": "2"}]})  # fmt: skip
        assert calc.status_code == 202, calc.text
    await prices.capture_snapshot(conn, DAY)  # as the table owner, like the daily job
    # and the monthly archive: each project's OLD estimate
    moved = await reports.archive_batch(conn, datetime(2025, 6, 1, tzinfo=UTC), 0, 100)
    assert moved[1:] == (2, 2)


def as_api_role(url: str, user: str, admin: bool = False) -> dict[str, list[Any]]:
    """Every row of each project table, read as nightcrew_api acting as ``user`` with the
    settings the core sets per request, and no WHERE at all."""
    seen: dict[str, list[Any]] = {}
    with psycopg.connect(url) as conn:
        conn.execute("SELECT set_config('nightcrew.user_id', %s, true),"
                     " set_config('nightcrew.is_admin', %s, true)",
                     (user, "true" if admin else "false"))  # fmt: skip
        conn.execute("SET LOCAL ROLE nightcrew_api")
        for table in PROJECT_TABLES:
            column = "id" if table == "projects" else "project_id"
            rows = conn.execute(f"SELECT DISTINCT {column} FROM estimating.{table}").fetchall()
            seen[table] = sorted(row[0] for row in rows)
        conn.rollback()
    return seen


async def test_the_api_role_sees_only_its_projects_rows_without_any_where(
    api: Api, conn: psycopg.AsyncConnection[Any], est_clean: str
) -> None:
    await alice_and_bob_projects(api, conn)
    await api.app.worker().run_until_idle(timeout=30)  # the calculations complete
    expected = [("alice", False, ["ALPHA"]), ("bob", False, ["BETA"]), ("carol", False, []),
                ("root", True, ["ALPHA", "BETA"])]  # fmt: skip
    for user, admin, visible in expected:
        assert as_api_role(est_clean, user, admin) == {t: visible for t in PROJECT_TABLES}
    with psycopg.connect(est_clean) as sync:  # the shared library: read, never written
        sync.execute("SELECT set_config('nightcrew.user_id', 'bob', true)")
        sync.execute("SET LOCAL ROLE nightcrew_api")
        assert sync.execute("SELECT count(*) FROM estimating.catalogue").fetchone() == (1,)
        updated = sync.execute("UPDATE estimating.catalogue SET rate = 0")
        assert updated.rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sync.execute("INSERT INTO estimating.project_members VALUES ('ALPHA', 'bob', 'owner')")


async def test_bob_gets_404_on_everything_of_alices_project(
    api: Api, conn: psycopg.AsyncConnection[Any]
) -> None:
    await alice_and_bob_projects(api, conn)
    await api.app.worker().run_until_idle(timeout=30)
    reads = ["/projects/ALPHA", "/projects/ALPHA/rates", "/projects/ALPHA/snapshots",
             "/projects/ALPHA/calculations", "/items/WALL?project_id=ALPHA",
             "/projects/ALPHA/estimates/E1", "/projects/ALPHA/estimates/OLD"]  # fmt: skip
    for path in reads:
        bob = await api.call("bob", "GET", path)
        missing = await api.call("bob", "GET", path.replace("ALPHA", "NOPE"))
        assert bob.status_code == 404, (path, bob.text)
        # indistinguishable from a project that does not exist
        assert bob.text == missing.text.replace("NOPE", "ALPHA")
    writes = [
        ("/projects/ALPHA/rates", {"rates": [{"code": "CEMENT", "rate": "1",
                                             "effective_from": "2026-01-01"}]}),
        ("/projects/ALPHA/members", {"user_id": "bob", "role": "owner"}),
        ("/usage", {"item_code": "WALL", "project_id": "ALPHA", "estimate_id": "X",
                    "quantity": "1"}),
        ("/calculations", {"project_id": "ALPHA", "items": [{"code": "WALL"}]}),
    ]  # fmt: skip
    for path, body in writes:
        answer = await api.call("bob", "POST", path, json=body)
        assert answer.status_code == 404, (path, answer.text)
    taken = await api.call("bob", "POST", "/projects", json={"id": "ALPHA", "name": "mine"})
    assert taken.status_code == 409 and taken.json()["error"]["field"] == "id"
    alice = await api.call("alice", "GET", "/projects/ALPHA/rates")
    assert [(r["code"], r["rate"]) for r in alice.json()["rates"]] == [("CEMENT", "12.0000")]
    project = (await api.call("alice", "GET", "/projects/ALPHA")).json()
    assert project["name"] == "ALPHA" and project["your_role"] == "owner"
    assert [m["user_id"] for m in project["members"]] == ["alice"]
    snapshots = (await api.call("alice", "GET", "/projects/ALPHA/snapshots")).json()
    assert [(s["code"], s["unit_price"]) for s in snapshots["snapshots"]] == [("WALL", "24.0000")]
    calcs = (await api.call("alice", "GET", "/projects/ALPHA/calculations")).json()
    assert [c["result"]["totals"]["direct"] for c in calcs["calculations"]] == ["48.00"]
    admin = await api.call("admin", "GET", "/projects/BETA/rates")
    assert admin.status_code == 200 and admin.json()["rates"][0]["rate"] == "14.0000"


async def test_owners_add_members_and_roles_decide_what_they_may_do(
    api: Api, conn: psycopg.AsyncConnection[Any]
) -> None:
    await library(conn)
    assert (await api.call("alice", "POST", "/projects",
                           json={"id": "ALPHA", "name": "A"})).status_code == 201  # fmt: skip
    rate = {"rates": [{"code": "CEMENT", "rate": "11", "effective_from": "2026-02-01"}]}
    add = await api.call("alice", "POST", "/projects/ALPHA/members",
                         json={"user_id": "bob", "role": "viewer"})  # fmt: skip
    assert add.status_code == 201 and add.json()["role"] == "viewer"
    assert (await api.call("bob", "GET", "/projects/ALPHA/rates")).status_code == 200
    viewer_writes = await api.call("bob", "POST", "/projects/ALPHA/rates", json=rate)
    assert viewer_writes.status_code == 403 and "editor" in viewer_writes.json()["error"]["message"]
    viewer_adds = await api.call("bob", "POST", "/projects/ALPHA/members",
                                 json={"user_id": "carol", "role": "owner"})  # fmt: skip
    assert viewer_adds.status_code == 403
    viewer_renames = await api.call("bob", "POST", "/projects", json={"id": "ALPHA", "name": "B"})
    assert viewer_renames.status_code == 403
    calc = await api.call("bob", "POST", "/calculations",
                          json={"project_id": "ALPHA", "items": [{"code": "WALL"}]})  # fmt: skip
    assert calc.status_code == 202, calc.text
    promoted = await api.call("alice", "POST", "/projects/ALPHA/members",
                              json={"user_id": "bob", "role": "editor"})  # fmt: skip
    assert promoted.json()["role"] == "editor"
    assert (await api.call("bob", "POST", "/projects/ALPHA/rates", json=rate)).status_code == 201
    renamed = await api.call("bob", "POST", "/projects", json={"id": "ALPHA", "name": "Alpha 2"})
    assert renamed.status_code == 201 and renamed.json()["name"] == "Alpha 2"
    editor_adds = await api.call("bob", "POST", "/projects/ALPHA/members",
                                 json={"user_id": "carol", "role": "viewer"})  # fmt: skip
    assert editor_adds.status_code == 403
    demote_self = await api.call("alice", "POST", "/projects/ALPHA/members",
                                 json={"user_id": "alice", "role": "viewer"})  # fmt: skip
    assert demote_self.status_code == 422 and demote_self.json()["error"]["field"] == "user_id"
    for bad in ({"user_id": "bob", "role": "boss"}, {"user_id": "no spaces", "role": "viewer"},
                {"user_id": "bob"}):  # fmt: skip
        refused = await api.call("alice", "POST", "/projects/ALPHA/members", json=bad)
        assert refused.status_code == 422, refused.text
    members = (await api.call("bob", "GET", "/projects/ALPHA")).json()["members"]
    assert {(m["user_id"], m["role"]) for m in members} == {("alice", "owner"), ("bob", "editor")}
    assert (await api.call("carol", "GET", "/projects/ALPHA")).status_code == 404


async def test_library_writes_and_bulk_updates_need_an_admin_key(
    api: Api, conn: psycopg.AsyncConnection[Any]
) -> None:
    await library(conn)
    attempts = [
        ("/catalogue", {"materials": [{"code": "CEMENT", "name": "x", "unit": "t",
                                       "rate": "0.01"}]}),
        ("/items", {"code": "WALL", "name": "x", "unit": "m2"}),
        ("/assemblies", {"code": "A1", "name": "x"}),
        ("/bulk-price-update", {"catalogue_codes": ["CEMENT"], "percent": 1000}),
        ("/bulk-assembly-update", {"assembly_code": "A1", "replace": "WALL",
                                   "with_item": "WALL"}),
    ]  # fmt: skip
    for path, body in attempts:
        answer = await api.call("alice", "POST", path, json=body)
        assert answer.status_code == 403, (path, answer.text)
        assert "admin" in answer.json()["error"]["message"]
    cur = await conn.execute("SELECT rate FROM estimating.catalogue")
    assert [row[0] for row in await cur.fetchall()] == [10]
    cur = await conn.execute("SELECT count(*) FROM nightcrew.jobs")
    assert await cur.fetchone() == (0,)
    shared = await api.call("alice", "GET", "/items/WALL")  # but everyone reads the library
    assert shared.status_code == 200 and shared.json()["unit_price"] == "20.0000"
    admin = await api.call("admin", "POST", "/catalogue", json={"materials": [
        {"code": "CEMENT", "name": "Cement", "unit": "t", "rate": "11"}]})  # fmt: skip
    assert admin.status_code == 201, admin.text


async def test_a_bad_notify_email_is_422_naming_the_field(
    api: Api, conn: psycopg.AsyncConnection[Any]
) -> None:
    await library(conn)
    answer = await api.call("admin", "POST", "/bulk-price-update", json={
        "catalogue_codes": ["CEMENT"], "percent": 5, "notify_email": "not an address"})  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["field"] == "notify_email"
    assert "not an address" in answer.json()["error"]["message"]
    cur = await conn.execute("SELECT count(*) FROM nightcrew.jobs")
    assert await cur.fetchone() == (0,)


async def test_workers_run_as_the_table_owner_and_see_every_project(
    api: Api, conn: psycopg.AsyncConnection[Any]
) -> None:
    await library(conn)
    for pid, owner in (("ALPHA", "alice"), ("BETA", "bob"), ("ORPHAN", None)):
        await project(conn, pid, owner)
        await rates(conn, pid, [("CEMENT", "20", "2026-01-01")])
        await use(conn, "WALL", pid, "E1", datetime(2026, 11, 1, tzinfo=UTC))
    job_id = await api.app.aenqueue("estimating.capture_price_snapshot", {"day": DAY.isoformat()})
    await api.app.worker().run_until_idle(timeout=30)
    job = await api.app.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job
    cur = await conn.execute(
        "SELECT DISTINCT project_id FROM estimating.project_price_snapshots ORDER BY 1"
    )
    assert [row[0] for row in await cur.fetchall()] == ["ALPHA", "BETA", "ORPHAN"]
    cur = await conn.execute("SELECT avg_project_rate FROM estimating.catalogue_price_snapshots")
    assert await cur.fetchone() == (20,)  # every project's rate, whoever owns it
