"""Bulk updates: a worker SIGKILLed in the middle of a bulk price update; the job resumes
elsewhere and every selected catalogue rate ends exactly +10 %, none changed twice."""

from __future__ import annotations

import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg

from estimating.library import create_assembly
from estimating.models import AssemblyRequest
from nightcrew import App, JobStatus
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import catalogue, item
from tests.procs import FAST_WORKER, Processes, nightcrew_env, reaped
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
ENTRIES = 260  # six batches of 50 (the last one 10)


async def load(conn: psycopg.AsyncConnection[Any]) -> None:
    await catalogue(conn, materials=[(f"M{i:03}", f"{10 + i * 0.25:.2f}") for i in range(ENTRIES)]
                    + [("UNUSED", "7.00")])  # fmt: skip
    for k in range(ENTRIES - 10):  # item k uses M(k) and M(k + 10): entries are shared
        await item(conn, f"ITEM-{k:03}", materials=[
            {"code": f"M{k:03}", "quantity_per_unit": "1"},
            {"code": f"M{k + 10:03}", "quantity_per_unit": "2"}])  # fmt: skip


def scalar(url: str, statement: str, params: Any = None) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]


def kill_worker_after(url: str, log_dir: Path, progress: str, job_id: Any, at_least: int) -> None:
    """Start a worker (tests.estimating.crash_app), wait until the ``progress`` query of
    ``job_id`` reads ``at_least`` (two committed batches), then SIGKILL it."""
    with reaped(Processes(log_dir)) as procs:
        victim = procs.launch(
            "nightcrew", "worker", "--app", "tests.estimating.crash_app:app", "--concurrency", "1",
            env=nightcrew_env(url, FAST_WORKER),
        )  # fmt: skip
        wait_until(lambda: (scalar(url, progress, (job_id,)) or 0) >= at_least, 30,
                   "two committed batches")  # fmt: skip
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)


async def test_killed_bulk_update_resumes_every_rate_exactly_plus_10(
    est_app: App, conn: psycopg.AsyncConnection[Any], est_clean: str, tmp_path: Path
) -> None:
    await load(conn)
    cur = await conn.execute("SELECT code, rate FROM estimating.catalogue")
    before = dict(await cur.fetchall())
    codes = [f"ITEM-{k:03}" for k in range(ENTRIES - 10)]
    job_id = await est_app.aenqueue("estimating.bulk_price_update",
                                    {"item_codes": codes, "percent": 10})  # fmt: skip
    done = "SELECT (checkpoint->>'done')::int FROM nightcrew.jobs WHERE id = %s"
    kill_worker_after(est_clean, tmp_path, done, job_id, 100)
    assert scalar(est_clean, done, (job_id,)) < ENTRIES, "finished before the kill"

    await est_app.worker().run_until_idle(timeout=60)
    job = await est_app.aget_job(job_id)
    assert job is not None and job.status is JobStatus.COMPLETED, job
    assert job.attempts == 2
    # 250 items selected; they share 260 catalogue entries, each raised once across attempts
    assert job.result["summary"] == (
        f"{ENTRIES - 10} items updated successfully ({ENTRIES} catalogue rates raised)"
    )
    cur = await conn.execute("SELECT code, rate FROM estimating.catalogue")
    after = dict(await cur.fetchall())
    wrong = [c for c in before if c != "UNUSED" and after[c] != before[c] * Decimal("1.1")]
    assert wrong == [] and after["UNUSED"] == before["UNUSED"]
    cur = await conn.execute(
        "SELECT count(*), count(DISTINCT catalogue_id) FROM estimating.bulk_price_changes"
    )
    assert await cur.fetchone() == (ENTRIES, ENTRIES)  # fmt: skip


async def test_bulk_price_update_over_http(
    est_app: App, conn: psycopg.AsyncConnection[Any], est_clean: str
) -> None:
    await catalogue(conn, materials=[("STEEL", "100.00"), ("WIRE", "3.00")])
    await item(
        conn,
        "REBAR",
        materials=[
            {"code": "STEEL", "quantity_per_unit": "1"},
            {"code": "WIRE", "quantity_per_unit": "0.1"},
        ],
    )
    await item(conn, "MESH", materials=[{"code": "STEEL", "quantity_per_unit": "2"}])
    with psycopg.connect(est_clean, autocommit=True) as sync:
        _, key = create_key(sync, "buyer", admin=True)  # catalogue-wide: admins only
    auth = {"Authorization": f"Bearer {key}"}
    transport = httpx.ASGITransport(app=create_app(est_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        unknown = await client.post(
            "/api/estimating/bulk-price-update",
            headers=auth,
            json={"item_codes": ["REBAR", "NOPE"], "percent": 10},
        )
        assert unknown.status_code == 404 and "'NOPE'" in unknown.json()["error"]["message"]
        response = await client.post("/api/estimating/bulk-price-update", headers=auth, json={
            "item_codes": ["REBAR", "MESH"], "percent": 10,
            "notify_email": "buyer@example.com"})  # fmt: skip
        assert response.status_code == 202, response.text
        await est_app.worker().run_until_idle(timeout=30)
        job = (await client.get(f"/api/jobs/{response.json()['id']}", headers=auth)).json()
        # REBAR and MESH share STEEL: two items, two entries (STEEL raised once)
        assert job["result"]["summary"] == "2 items updated successfully (2 catalogue rates raised)"
        shown = (await client.get("/api/estimating/items/MESH", headers=auth)).json()
    assert shown["factors"][0]["rate"] == "110.0000" and shown["unit_price"] == "220.0000"
    cur = await conn.execute("SELECT notify->>'email' FROM nightcrew.jobs WHERE id = %s",
                             (response.json()["id"],))  # fmt: skip
    assert await cur.fetchone() == ("buyer@example.com",)


async def test_bulk_assembly_update_replaces_across_children(
    est_app: App, conn: psycopg.AsyncConnection[Any]
) -> None:
    await catalogue(conn, materials=[("C25", "80"), ("C30", "90")])
    await item(conn, "CONC-C25", materials=[{"code": "C25", "quantity_per_unit": "1"}])
    await item(conn, "CONC-C30", materials=[{"code": "C30", "quantity_per_unit": "1"}])
    await create_assembly(
        conn,
        AssemblyRequest.model_validate(
            {"code": "BLDG", "name": "Building", "items": [{"code": "CONC-C25", "quantity": "5"}]}
        ),
    )
    for n in range(60):  # more children than one batch
        await create_assembly(conn, AssemblyRequest.model_validate({
            "code": f"FLOOR-{n}", "name": "Floor", "parent_code": "BLDG",
            "items": [{"code": "CONC-C25", "quantity": "2"}]
            + ([{"code": "CONC-C30", "quantity": "1"}] if n == 0 else [])}))  # fmt: skip
    job_id = await est_app.aenqueue("estimating.bulk_assembly_update", {
        "assembly_code": "BLDG", "replace": "CONC-C25", "with_item": "CONC-C30"})  # fmt: skip
    await est_app.worker().run_until_idle(timeout=30)
    job = await est_app.aget_job(job_id)
    assert job is not None and job.result["assemblies"] == 61, job
    cur = await conn.execute(
        "SELECT i.code, sum(ai.quantity), count(*) FROM estimating.assembly_items ai"
        " JOIN estimating.items i ON i.id = ai.item_id GROUP BY 1"
    )
    assert dict((c, (q, n)) for c, q, n in await cur.fetchall()) == {
        "CONC-C30": (Decimal("126"), 61)
    }  # 5 + 60 * 2 + 1 (FLOOR-0 held both)
