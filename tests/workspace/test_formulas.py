"""Formulas: the grammar and exact arithmetic, and the recompute job (recursive CTE over
the dependencies, dependency order, one transaction with the checkpoint) over HTTP and a
real worker (``drain``)."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from nightcrew import App
from nightcrew.testing import drain
from tests.workspace.helpers import client, rows, scalar
from workspace import formulas
from workspace.formulas import CellError, FormulaSyntaxError


def evaluate(text: str, cells: dict[str, Any] | None = None) -> Decimal | str:
    values = {k: Decimal(str(v)) for k, v in (cells or {}).items()}
    try:
        return formulas.parse(text).evaluate(values.get)
    except CellError as exc:
        return exc.code


def test_arithmetic_is_exact_decimal_with_spreadsheet_precedence() -> None:
    assert evaluate("=0.1+0.2") == Decimal("0.3")
    assert evaluate("=SUM(A1:A3)*B2", {"A1": "0.1", "A2": "0.2", "A3": "0.3", "B2": 3}) == Decimal(
        "1.8"
    )
    assert evaluate("=2^3^2") == 512  # right-associative
    assert evaluate("=(1+2)*3-4/2") == 7
    assert evaluate("=ROUND(2.675, 2)") == Decimal("2.68")  # half up, no binary float
    assert evaluate("=AVG(A1:A2)", {"A1": 1, "A2": 2}) == Decimal("1.5")
    assert evaluate("=MIN(A1:A2)+MAX(A1,A2,7)", {"A1": -1, "A2": 2}) == 6
    assert evaluate("=IF(A1>=2, 10, 1/0)", {"A1": 2}) == 10  # the branch not taken
    assert evaluate("=IF(A1<>2, 10, 20)", {"A1": 2}) == 20
    assert evaluate("=1/0") == "#DIV/0!"
    assert evaluate("=AVG(A1:A2)") == "#DIV/0!"  # empty cells are not values
    assert evaluate("=A1:A2") == "#VALUE!"


@pytest.mark.parametrize("text", ["=SUM(", "=1+", "1+2", "=FOO(1)", "=A0", "=A1:ZZZ9999999"])
def test_a_formula_that_cannot_be_stored_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(FormulaSyntaxError):
        formulas.parse(text)


def test_references_expand_ranges() -> None:
    assert formulas.parse("=SUM(A1:B2)+C3*a1").references == ("A1", "B1", "A2", "B2", "C3")


async def put(http: Any, sheet: str, ref: str, **body: Any) -> Any:
    answer = await http.put(f"/api/workspace/sheets/{sheet}/cells/{ref}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def cells(url: str, sheet: str) -> dict[str, tuple[Any, ...]]:
    found = rows(
        url,
        "SELECT ref, value, error, in_cycle, computations FROM workspace.cells WHERE sheet = %s",
        (sheet,),
    )
    return {r[0]: r[1:] for r in found}


async def test_a_chain_of_1000_cells_recomputes_in_order(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    # Written by SQL in one go (1,000 PUTs would only test HTTP), then one change at the top.
    with psycopg.connect(ws_clean) as conn:
        conn.execute("INSERT INTO workspace.sheets (name, owner) VALUES ('chain', 'alice')")
        conn.execute(
            "INSERT INTO workspace.cells (sheet, ref, owner, input)"
            " VALUES ('chain', 'A1', 'alice', 1)"
        )
        conn.execute(
            "INSERT INTO workspace.cells (sheet, ref, owner, formula)"
            " SELECT 'chain', 'A' || n, 'alice', '=A' || (n - 1) || '+0.5'"
            " FROM generate_series(2, 1000) n"
        )
        conn.execute(
            "INSERT INTO workspace.cell_dependencies (sheet, ref, depends_on)"
            " SELECT 'chain', 'A' || n, 'A' || (n - 1) FROM generate_series(2, 1000) n"
        )
        conn.commit()
    await drain(ws_app)
    assert cells(ws_clean, "chain")["A1000"][0] == Decimal("500.5")
    async with client(ws_app, keys["alice"]) as http:
        await put(http, "chain", "A1", value="2.25")
    started = time.monotonic()
    await drain(ws_app)
    elapsed = time.monotonic() - started
    values = cells(ws_clean, "chain")
    assert values["A1000"][0] == Decimal("2.25") + Decimal("0.5") * 999
    assert {v[3] for v in values.values()} == {2}  # each computed once per recompute
    assert scalar(ws_clean, "SELECT count(*) FROM workspace.cell_changes") == 0
    assert elapsed < 30  # the benchmark measures it properly (target 2 s)


async def test_a_diamond_computes_its_sink_once_and_values_are_exact(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    async with client(ws_app, keys["alice"]) as http:
        await put(http, "d", "A1", value="0.1")
        await put(http, "d", "B1", formula="=A1*3")
        await put(http, "d", "C1", formula="=A1+0.2")
        await put(http, "d", "D1", formula="=B1+C1")
        await drain(ws_app)
        before = cells(ws_clean, "d")
        await put(http, "d", "A1", value="0.7")
        await drain(ws_app)
        sheet = (await http.get("/api/workspace/sheets/d")).json()
    after = cells(ws_clean, "d")
    assert after["D1"][0] == Decimal("3.0")  # 0.7*3 + 0.7+0.2, exactly
    assert after["D1"][3] == before["D1"][3] + 1  # the sink once per change
    by_ref = {c["ref"]: c for c in sheet["cells"]}
    assert by_ref["D1"]["value"] == "3" and by_ref["D1"]["formula"] == "=B1+C1"
    assert by_ref["A1"]["value"] == "0.7"
    assert sheet["last_recompute_job"]
    job = rows(
        ws_clean,
        "SELECT checkpoint, status::text FROM nightcrew.jobs WHERE id = %s",
        (sheet["last_recompute_job"],),
    )
    assert job[0][1] == "completed" and job[0][0]["last_change"] > 0


async def test_a_cycle_marks_exactly_its_cells_and_errors_propagate(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    async with client(ws_app, keys["alice"]) as http:
        await put(http, "c", "A1", value=1)
        await put(http, "c", "B1", formula="=C1+A1")
        await put(http, "c", "C1", formula="=D1*2")
        await put(http, "c", "D1", formula="=B1")  # B1 -> C1 -> D1 -> B1
        await put(http, "c", "E1", formula="=D1+1")  # reads the cycle
        await put(http, "c", "F1", formula="=A1/0")
        await put(http, "c", "G1", formula="=F1+1")
        await put(http, "c", "H1", formula="=IF(A1>0, 5, F1)")  # the error not taken
        await drain(ws_app)
    found = cells(ws_clean, "c")
    assert {ref for ref, v in found.items() if v[2]} == {"B1", "C1", "D1"}
    assert {ref: v[1] for ref, v in found.items() if v[1]} == {
        "B1": "#CYCLE",
        "C1": "#CYCLE",
        "D1": "#CYCLE",
        "E1": "#CYCLE",
        "F1": "#DIV/0!",
        "G1": "#DIV/0!",
    }
    assert found["H1"][0] == 5 and found["A1"][0] == 1
    # The recompute did not fail: the cycle is a value.
    assert (
        scalar(
            ws_clean,
            "SELECT count(*) FROM nightcrew.jobs WHERE status::text <> "
            "'completed' AND type = 'workspace.recompute_formulas'",
        )
        == 0
    )


async def test_sheets_are_private_and_bad_cells_are_422(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    async with client(ws_app, keys["alice"]) as alice, client(ws_app, keys["bob"]) as bob:
        await put(alice, "budget", "A1", value=10)
        assert (await bob.get("/api/workspace/sheets/budget")).status_code == 404
        taken = await bob.put("/api/workspace/sheets/budget/cells/A1", json={"value": 1})
        assert taken.status_code == 404
        bad = [
            await alice.put("/api/workspace/sheets/budget/cells/A1", json={"formula": "=SUM("}),
            await alice.put("/api/workspace/sheets/budget/cells/1A", json={"value": 1}),
            await alice.put("/api/workspace/sheets/budget/cells/A1", json={}),
            await alice.put(
                "/api/workspace/sheets/budget/cells/A1", json={"value": 1, "formula": "=1"}
            ),
            await alice.put("/api/workspace/sheets/budget/cells/A1", json={"formula": "=NOPE(1)"}),
            await alice.put("/api/workspace/sheets/bad%20name/cells/A1", json={"value": 1}),
        ]
        assert [b.status_code for b in bad] == [422] * 6, [b.text for b in bad]
        assert "column" in bad[0].text and "NOPE" in bad[4].text
        await drain(ws_app)
        mine = (await alice.get("/api/workspace/sheets/budget")).json()
    assert [c["value"] for c in mine["cells"]] == ["10"]


async def test_a_recompute_bob_enqueues_for_alices_sheet_tells_him_no_cells(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    # The job types the triggers enqueue are public (the API role may only enqueue public
    # types), so bob may enqueue one for any sheet name: its result must not reveal cells.
    async with client(ws_app, keys["alice"]) as alice, client(ws_app, keys["bob"]) as bob:
        await put(alice, "secret", "B7", formula="=C9+1")
        await put(alice, "secret", "C9", formula="=B7*2")
        answer = await bob.post(
            "/api/jobs",
            json={"type": "workspace.recompute_formulas", "payload": {"sheet": "secret"}},
        )
        assert answer.status_code == 202, answer.text
        await drain(ws_app)
        job = (await bob.get(f"/api/jobs/{answer.json()['id']}")).json()
    told = str(job)
    assert job["status"] == "completed"
    assert "B7" not in told and "C9" not in told


def test_a_formula_reading_too_many_cells_in_all_is_refused() -> None:
    # Each range is within the limit; together they would store 300,000 dependency rows.
    text = "=SUM(A1:A100000)+SUM(B1:B100000)+SUM(C1:C100000)"
    with pytest.raises(FormulaSyntaxError, match="reads 100,000 cells at most"):
        formulas.parse(text)
