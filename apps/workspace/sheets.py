"""Sheets of formula cells: storing a cell (as the acting user) and the recompute job,
which finds what changed and everything downstream (a recursive CTE), computes each cell
once in dependency order and writes every value in one transaction with its checkpoint."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from workspace import formulas
from workspace.errors import Invalid, NotFound
from workspace.formulas import CellError, Formula, FormulaSyntaxError, Value
from workspace.sql import query

Conn = psycopg.AsyncConnection[Any]
CYCLE = "#CYCLE"


async def put_cell(
    conn: Conn, sheet: str, ref: str, formula: str | None, value: Decimal | None
) -> dict[str, Any]:
    """Store a formula or a value in ``sheet!ref`` (the sheet is created for the acting
    user if new); the trigger enqueues the recompute. 404 for another user's sheet."""
    cell = _cell_ref(ref)
    parsed = _parse(formula) if formula is not None else None
    cur = await conn.execute(query("sheet_claim"), {"sheet": sheet})
    row = await cur.fetchone()
    if row is None or row[0] != "yours":
        raise NotFound(f"unknown sheet {sheet!r}", field="sheet")
    params = {
        "sheet": sheet,
        "ref": cell,
        "formula": parsed.text if parsed else None,
        "input": value,
    }
    await conn.execute(query("cell_upsert"), params)
    reads = list(parsed.references) if parsed else []
    await conn.execute(
        query("cell_dependencies_set"), {"sheet": sheet, "ref": cell, "depends_on": reads}
    )
    cur = await conn.execute(query("recompute_job_pending"), {"sheet": sheet})
    job = await cur.fetchone()
    return {
        "sheet": sheet,
        "ref": cell,
        "formula": params["formula"],
        "value": None if value is None else str(value),
        "reads": reads,
        "recompute_job": str(job[0]) if job else None,
    }


def _cell_ref(ref: str) -> str:
    try:
        return formulas.normalise_ref(ref)
    except ValueError as exc:
        raise Invalid(str(exc), field="ref") from None


def _parse(text: str) -> Formula:
    try:
        return formulas.parse(text)
    except FormulaSyntaxError as exc:
        raise Invalid(str(exc), field="formula") from None


async def get_sheet(conn: Conn, sheet: str) -> dict[str, Any]:
    """Every cell of the sheet with its formula, value or error."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("sheet_get"), {"sheet": sheet})
        head = await cur.fetchone()
        if head is None:
            raise NotFound(f"unknown sheet {sheet!r}", field="sheet")
        await cur.execute(query("sheet_cells"), {"sheet": sheet})
        cells = await cur.fetchall()
    return {
        "name": head["name"],
        "owner": head["owner"],
        "last_recompute_job": str(head["last_recompute_job"] or "") or None,
        "last_recompute_at": _iso(head["last_recompute_at"]),
        "cells": [_cell_json(c) for c in cells],
    }


def _cell_json(cell: dict[str, Any]) -> dict[str, Any]:
    return {
        "ref": cell["ref"],
        "formula": cell["formula"],
        "input": _text(cell["input"]),
        "value": _text(cell["value"]),
        "error": cell["error"],
        "in_cycle": cell["in_cycle"],
        "computations": cell["computations"],
        "computed_at": _iso(cell["computed_at"]),
    }


def _text(number: Decimal | None) -> str | None:
    """A stored number as exact text (``0.3``, not a float's ``0.30000000000000004``)."""
    return None if number is None else format(number.normalize() if number else Decimal(0), "f")


def _iso(moment: Any) -> str | None:
    return None if moment is None else str(moment.isoformat())


async def sheets(conn: Conn, limit: int = 50) -> list[dict[str, Any]]:
    """The sheets the caller sees, with cell and error counts."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("sheet_list"), {"limit": limit})
        return list(await cur.fetchall())


# ---- recompute --------------------------------------------------------------------------


async def recompute(conn: Conn, sheet: str, job_id: UUID) -> dict[str, Any]:
    """Recompute what the pending changes of ``sheet`` affect, on ``conn`` inside the
    caller's transaction (the job's, with its checkpoint)."""
    cur = await conn.execute(query("recompute_lock"), {"sheet": sheet})
    if await cur.fetchone() is None:
        return {"sheet": sheet, "computed": 0, "summary": "sheet deleted"}
    cur = await conn.execute(query("recompute_changes"), {"sheet": sheet})
    last_change, changed = await cur.fetchone() or (0, [])
    if not changed:
        return {
            "sheet": sheet,
            "computed": 0,
            "last_change": last_change,
            "summary": "nothing changed",
        }
    cells = await _downstream(conn, sheet, list(changed))
    outside = {ref for cell in cells.values() for ref in cell["reads"]} - cells.keys()
    known = await _values(conn, sheet, outside)
    order, cyclic = dependency_order(cells)
    results = compute(cells, order, cyclic, known)
    await _write(conn, sheet, results, cyclic)
    await conn.execute(
        query("recompute_done"), {"sheet": sheet, "last_change": last_change, "job": job_id}
    )
    errors = sum(1 for r in results.values() if isinstance(r, CellError))
    # Counts only: the type is public (triggers enqueue it under the API role), so anyone
    # may enqueue it for any sheet name, and its result must not tell them the cells.
    return {
        "sheet": sheet,
        "computed": len(results),
        "errors": errors,
        "in_cycle": len(cyclic),
        "last_change": last_change,
        "summary": f"{len(results)} cells of {sheet} recomputed, {errors} in error",
    }


async def _downstream(conn: Conn, sheet: str, refs: list[str]) -> dict[str, dict[str, Any]]:
    cur = await conn.execute(query("recompute_downstream"), {"sheet": sheet, "refs": refs})
    return {
        row[0]: {"formula": row[1], "input": row[2], "reads": list(row[3])}
        for row in await cur.fetchall()
    }


async def _values(conn: Conn, sheet: str, refs: Iterable[str]) -> dict[str, Value | CellError]:
    cur = await conn.execute(query("recompute_precedents"), {"sheet": sheet, "refs": list(refs)})
    return {row[0]: CellError(row[2]) if row[2] else row[1] for row in await cur.fetchall()}


def dependency_order(cells: dict[str, dict[str, Any]]) -> tuple[list[str], set[str]]:
    """A topological order of ``cells`` (Kahn's algorithm over their reads among
    themselves), and the cells on a cycle. Cells only downstream of a cycle come after it
    in the order; cycle members are left out of it."""
    readers: dict[str, list[str]] = defaultdict(list)
    waiting = {ref: 0 for ref in cells}
    for ref, cell in cells.items():
        for precedent in set(cell["reads"]):
            if precedent in cells:
                readers[precedent].append(ref)
                waiting[ref] += 1
    ready = deque(sorted(ref for ref, n in waiting.items() if n == 0))
    order: list[str] = []
    while ready:
        ref = ready.popleft()
        order.append(ref)
        for reader in readers[ref]:
            waiting[reader] -= 1
            if waiting[reader] == 0:
                ready.append(reader)
    stuck = {ref for ref, n in waiting.items() if n > 0}
    cyclic = cycle_members(stuck, cells)
    # What is stuck but not on a cycle only reads one: order it after the cycle.
    rest = _order_after_cycles(stuck - cyclic, cyclic, cells)
    return order + rest, cyclic


def cycle_members(stuck: set[str], cells: dict[str, dict[str, Any]]) -> set[str]:
    """The cells of ``stuck`` that lie on a cycle: strongly connected components of more
    than one cell, or a cell reading itself (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    members: set[str] = set()
    counter = 0
    for root in sorted(stuck):
        if root in index:
            continue
        work = [(root, iter(sorted(p for p in set(cells[root]["reads"]) if p in stuck)))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            advanced = False
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    reads = sorted(p for p in set(cells[nxt]["reads"]) if p in stuck)
                    work.append((nxt, iter(reads)))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1 or node in cells[node]["reads"]:
                    members.update(component)
    return members


def _order_after_cycles(
    rest: set[str], cyclic: set[str], cells: dict[str, dict[str, Any]]
) -> list[str]:
    """Kahn's order of the cells downstream of a cycle, counting cycle cells as done."""
    sub = {
        ref: {**cells[ref], "reads": [r for r in cells[ref]["reads"] if r not in cyclic]}
        for ref in rest
    }
    order, leftover = dependency_order(sub) if sub else ([], set())
    assert not leftover
    return order


def compute(
    cells: dict[str, dict[str, Any]],
    order: list[str],
    cyclic: set[str],
    known: dict[str, Value | CellError],
) -> dict[str, Value | CellError]:
    """Each cell's new value or error, each computed once, in ``order``."""
    results: dict[str, Value | CellError] = {ref: CellError(CYCLE) for ref in cyclic}
    parsed: dict[str, Formula] = {}

    def lookup(ref: str) -> Value:
        value = results[ref] if ref in results else known.get(ref)
        if isinstance(value, CellError):
            raise CellError(value.code)
        return value

    for ref in order:
        cell = cells[ref]
        if cell["formula"] is None:
            results[ref] = cell["input"]
            continue
        try:
            formula = parsed.get(ref) or formulas.parse(cell["formula"])
            results[ref] = formula.evaluate(lookup)
        except CellError as exc:
            results[ref] = exc
        except (FormulaSyntaxError, InvalidOperation):
            results[ref] = CellError("#VALUE!")
    return results


async def _write(
    conn: Conn, sheet: str, results: dict[str, Value | CellError], cyclic: set[str]
) -> None:
    refs = sorted(results)
    values = [None if isinstance(results[r], CellError) else results[r] for r in refs]
    errors = [
        results[r].code if isinstance(results[r], CellError) else None  # type: ignore[union-attr]
        for r in refs
    ]
    params = {
        "sheet": sheet,
        "refs": refs,
        "values": [_numeric(v) for v in values],
        "errors": errors,
        "cycles": [r in cyclic for r in refs],
    }
    await conn.execute(query("recompute_write"), params)


def _numeric(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(int(value)) if isinstance(value, bool) else Decimal(value)
