"""The complex cost calculation, checked to the cent by hand (see the comments), through
the job and through ``POST /api/estimating/calculations``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import ValidationError

from estimating import library
from estimating.costs import calculate_costs
from estimating.models import CalculationRequest
from nightcrew import App, JobStatus
from nightcrew.http import create_app
from nightcrew.keys import create_key
from tests.estimating.helpers import catalogue, item, member, project, rates

TODAY = date.today()


async def load(conn: psycopg.AsyncConnection[Any]) -> None:
    await catalogue(
        conn,
        materials=[("CEMENT", "10.00"), ("SAND", "30.00")],
        labour=[("LAB-CONC", "45.50")],
        equipment=[("PUMP", "120.00")],
    )
    await item(
        conn, "CONC-C25",
        materials=[{"code": "CEMENT", "quantity_per_unit": "350", "wastage_percentage": "5"}],
        labour=[{"code": "LAB-CONC", "hours_per_unit": "0.8", "productivity_factor": "0.9",
                 "crew_size": "3"}],
        equipment=[{"code": "PUMP", "hours_per_unit": "0.25", "utilization_factor": "0.8"}],
    )  # fmt: skip
    await item(conn, "SAND-FILL", materials=[
        {"code": "SAND", "quantity_per_unit": "0.5", "wastage_percentage": "10"}])  # fmt: skip
    await item(conn, "EMPTY")
    await project(conn, "P1")
    # The latest rate in force wins (12.00); a future-dated one does not apply yet.
    await rates(conn, "P1", [
        ("CEMENT", "11.00", (TODAY - timedelta(days=60)).isoformat()),
        ("CEMENT", "12.00", (TODAY - timedelta(days=10)).isoformat()),
        ("CEMENT", "99.00", (TODAY + timedelta(days=10)).isoformat()),
    ])  # fmt: skip


REQUEST = {  # a caller from before the include_* flags: percentages sent, so included
    "project_id": "P1",
    "indirect_pct": "15",
    "overhead_pct": "10",
    "contingency_pct": "5",
    "items": [
        {"code": "CONC-C25", "quantity": "12.5"},
        {"code": "NOPE", "quantity": "1"},
        {"code": "SAND-FILL", "quantity": "3"},
        {"code": "EMPTY", "quantity": "2"},
    ],
}


def check(result: dict[str, Any]) -> None:
    lines = {line["code"]: line for line in result["items"]}
    conc = lines["CONC-C25"]
    # material 12 * 350 * 1.05 = 4410; labour 45.50 * 0.8 / 0.9 * 3 = 121.3333...;
    # equipment 120 * 0.25 * 0.8 = 24 -> unit 4555.3333...; x 12.5 = 56941.666... -> 56941.67
    assert (conc["material"], conc["labour"], conc["equipment"]) == (
        "4410.0000", "121.3333", "24.0000")  # fmt: skip
    assert conc["unit_price"] == "4555.3333" and conc["amount"] == "56941.67"
    cement = next(f for f in conc["factors"] if f["code"] == "CEMENT")
    assert (cement["rate"], cement["rate_source"]) == ("12.0000", "project")
    pump = next(f for f in conc["factors"] if f["code"] == "PUMP")
    assert (pump["rate"], pump["rate_source"]) == ("120.0000", "catalogue")
    assert lines["SAND-FILL"]["amount"] == "49.50"  # 30 * 0.5 * 1.10 * 3
    assert lines["NOPE"] == {"code": "NOPE", "quantity": "1", "status": "error",
                             "error": "unknown item code 'NOPE'"}  # fmt: skip
    assert lines["EMPTY"]["status"] == "error" and "no factors" in lines["EMPTY"]["error"]
    # direct 56991.17; indirect 15 % = 8548.6755 -> 8548.68; overhead 10 % of 65539.85 =
    # 6553.985 -> 6553.99 (half up); contingency 5 % of 72093.84 = 3604.692 -> 3604.69.
    assert result["totals"] == {
        "direct": "56991.17", "indirect": "8548.68", "overhead": "6553.99",
        "contingency": "3604.69", "total": "75698.53", "indirect_pct": "15",
        "overhead_pct": "10", "contingency_pct": "5", "include_indirect": True,
        "include_overhead": True, "include_contingency": True,
    }  # fmt: skip
    assert (result["priced"], result["failed"]) == (2, 2)


async def test_calculation_to_the_cent(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    check(await calculate_costs(conn, CalculationRequest.model_validate(REQUEST)))


async def test_by_default_the_total_is_the_direct_cost_as_in_the_seed(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await load(conn)
    lines = [{"code": "CONC-C25", "quantity": "12.5"}, {"code": "SAND-FILL", "quantity": "3"}]
    plain = await calculate_costs(
        conn, CalculationRequest.model_validate({"project_id": "P1", "items": lines})
    )
    assert plain["totals"] == {
        "direct": "56991.17", "indirect": "0.00", "overhead": "0.00", "contingency": "0.00",
        "total": "56991.17", "include_indirect": False, "include_overhead": False,
        "include_contingency": False, "indirect_pct": None, "overhead_pct": None,
        "contingency_pct": None,
    }  # fmt: skip
    # The seed's flags: overhead at its default 10 % and contingency at 4 %, no indirect.
    # overhead 10 % of 56991.17 = 5699.117 -> 5699.12; contingency 4 % of 62690.29 =
    # 2507.6116 -> 2507.61; total 65197.90.
    flagged = await calculate_costs(conn, CalculationRequest.model_validate({
        "project_id": "P1", "items": lines, "include_overhead": True,
        "include_contingency": True, "contingency_pct": "4"}))  # fmt: skip
    totals = flagged["totals"]
    assert (totals["indirect"], totals["overhead"], totals["contingency"], totals["total"]) == (
        "0.00", "5699.12", "2507.61", "65197.90")  # fmt: skip
    assert (totals["overhead_pct"], totals["contingency_pct"]) == ("10", "4")


def test_a_percentage_with_its_cost_switched_off_is_refused() -> None:
    body = {"project_id": "P1", "items": [{"code": "X"}], "include_overhead": False,
            "overhead_pct": "12"}  # fmt: skip
    with pytest.raises(ValidationError, match="overhead_pct is given but include_overhead"):
        CalculationRequest.model_validate(body)


async def test_item_shows_factors_rates_and_unit_price(conn: psycopg.AsyncConnection[Any]) -> None:
    await load(conn)
    shown = await library.get_item(conn, "CONC-C25")
    # catalogue rates: 10 * 350 * 1.05 + 121.3333 + 24
    assert shown["unit_price"] == "3820.3333"
    assert {f["code"]: f["rate"] for f in shown["factors"]} == {
        "CEMENT": "10.0000", "LAB-CONC": "45.5000", "PUMP": "120.0000"}  # fmt: skip
    for_project = await library.get_item(conn, "CONC-C25", project_id="P1")
    assert for_project["unit_price"] == "4555.3333"


async def test_calculation_over_http_returns_202_and_a_job(
    est_app: App, conn: psycopg.AsyncConnection[Any], est_clean: str
) -> None:
    await load(conn)
    await member(conn, "P1", "estimator", "viewer")  # a viewer may run calculations
    with psycopg.connect(est_clean, autocommit=True) as sync:
        _, key = create_key(sync, "estimator")
    auth = {"Authorization": f"Bearer {key}"}
    transport = httpx.ASGITransport(app=create_app(est_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/api/estimating/calculations", json=REQUEST, headers=auth)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        unknown = await client.post("/api/estimating/calculations", headers=auth,
                                    json={**REQUEST, "project_id": "NOPE"})  # fmt: skip
        assert unknown.status_code == 404 and "'NOPE'" in unknown.json()["error"]["message"]
        negative = await client.post("/api/estimating/calculations", headers=auth, json={
            "project_id": "P1", "items": [{"code": "CONC-C25", "quantity": "-1"}]})  # fmt: skip
        assert negative.status_code == 422 and "quantity" in negative.json()["error"]["field"]
        bad = await client.post("/api/estimating/calculations", headers=auth, json={
            "project_id": "P1", "items": [{"code": "CONC-C25", "quantity": "lots"}]})  # fmt: skip
        assert bad.status_code == 422
        contradiction = await client.post("/api/estimating/calculations", headers=auth, json={
            **REQUEST, "include_indirect": False})  # fmt: skip
        assert contradiction.status_code == 422, contradiction.text
        assert "indirect_pct is given but include_indirect" in contradiction.text
        anonymous = await client.post("/api/estimating/calculations", json=REQUEST)
        assert anonymous.status_code == 401
        await est_app.worker().run_until_idle(timeout=30)
        job = (await client.get(f"/api/jobs/{job_id}", headers=auth)).json()
    assert job["status"] == JobStatus.COMPLETED.value, job
    check(job["result"])
