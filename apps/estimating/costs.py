"""Cost arithmetic in :class:`~decimal.Decimal`: per-factor unit costs, item unit prices
and the complex cost calculation (direct, indirect, overhead, contingency).

Rounding (docs/estimating.md): factor and unit costs keep full precision; each line's
amount (unit cost x quantity) is rounded to the cent, half up; the direct total is the sum
of rounded lines; indirect, overhead and contingency are each rounded to the cent, half up.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from estimating.errors import UnknownCode
from estimating.models import COST_OPTIONS, CalculationRequest
from estimating.sql import query

CENT = Decimal("0.01")
SHOWN = Decimal("0.0001")
HUNDRED = Decimal(100)


def cents(value: Decimal) -> Decimal:
    """Round money to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def shown(value: Decimal) -> str:
    """A full-precision amount as shown (4 decimals, half up)."""
    return str(value.quantize(SHOWN, rounding=ROUND_HALF_UP))


def _d(value: Any, default: str = "0") -> Decimal:
    return Decimal(default) if value is None else Decimal(value)


@dataclass(frozen=True)
class PricedFactor:
    """A factor of an item with the rate used for it."""

    kind: str
    code: str
    name: str
    unit: str
    rate: Decimal
    rate_source: str
    """``project`` (a dated project rate) or ``catalogue``."""
    rate_effective_from: date | None
    row: dict[str, Any]

    @property
    def cost_per_unit(self) -> Decimal:
        """The factor's cost per unit of the item (full precision)."""
        r = self.row
        if self.kind == "material":
            wastage = _d(r["wastage_percentage"])
            return self.rate * _d(r["quantity_per_unit"]) * (1 + wastage / HUNDRED)
        if self.kind == "labour":
            hours, crew = _d(r["hours_per_unit"]), _d(r["crew_size"], "1")
            return self.rate * hours / _d(r["productivity_factor"], "1") * crew
        return self.rate * _d(r["hours_per_unit"]) * _d(r["utilization_factor"], "1")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly breakdown line."""
        factors = {
            k: str(v) for k, v in self.row.items()
            if v is not None and k in _FACTOR_FIELDS[self.kind]
        }  # fmt: skip
        return {
            "kind": self.kind, "code": self.code, "name": self.name, "unit": self.unit,
            **factors, "rate": str(self.rate), "rate_source": self.rate_source,
            "rate_effective_from": (
                self.rate_effective_from.isoformat() if self.rate_effective_from else None
            ),
            "cost_per_unit": shown(self.cost_per_unit),
        }  # fmt: skip


_FACTOR_FIELDS = {
    "material": ("quantity_per_unit", "wastage_percentage"),
    "labour": ("hours_per_unit", "productivity_factor", "crew_size"),
    "equipment": ("hours_per_unit", "utilization_factor"),
}


def unit_breakdown(factors: list[PricedFactor]) -> dict[str, Decimal]:
    """Material, labour, equipment and total cost per unit of one item."""
    totals = {"material": Decimal(0), "labour": Decimal(0), "equipment": Decimal(0)}
    for factor in factors:
        totals[factor.kind] += factor.cost_per_unit
    totals["unit_price"] = totals["material"] + totals["labour"] + totals["equipment"]
    return totals


async def priced_factors(
    conn: psycopg.AsyncConnection[Any],
    item_ids: list[int],
    *,
    project_id: str | None = None,
    as_of: date | None = None,
) -> dict[int, list[PricedFactor]]:
    """The factors of each item, priced with the project's rates in force on ``as_of``
    (default today), falling back to catalogue rates (all catalogue without a project)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("item_factors_of"), {"item_ids": item_ids})
        rows = await cur.fetchall()
        overrides: dict[int, dict[str, Any]] = {}
        if project_id is not None and rows:
            params = {
                "project_id": project_id,
                "catalogue_ids": sorted({r["catalogue_id"] for r in rows}),
                "as_of": as_of or date.today(),
            }
            await cur.execute(query("project_rates_in_force"), params)
            overrides = {r["catalogue_id"]: r for r in await cur.fetchall()}
    result: dict[int, list[PricedFactor]] = defaultdict(list)
    for row in rows:
        override = overrides.get(row["catalogue_id"])
        result[row["item_id"]].append(
            PricedFactor(
                kind=row["kind"],
                code=row["code"],
                name=row["name"],
                unit=row["unit"],
                rate=override["rate"] if override else row["catalogue_rate"],
                rate_source="project" if override else "catalogue",
                rate_effective_from=override["effective_from"] if override else None,
                row=row,
            )
        )
    return result


def summarise(direct: Decimal, request: CalculationRequest) -> dict[str, Any]:
    """Direct, then indirect, overhead and contingency (each 0 unless included, else its
    percentage of the running total, rounded to the cent), and their total."""
    amounts = {"direct": direct}
    running = direct
    for name in COST_OPTIONS:
        amount = cents(running * request.percent(name) / HUNDRED)
        amounts[name] = amount if request.included(name) else Decimal("0.00")
        running += amounts[name]
    return {
        **{name: str(value) for name, value in amounts.items()}, "total": str(running),
        **{f"include_{n}": request.included(n) for n in COST_OPTIONS},
        **{f"{n}_pct": str(request.percent(n)) if request.included(n) else None
           for n in COST_OPTIONS},
    }  # fmt: skip


async def calculate_costs(
    conn: psycopg.AsyncConnection[Any], request: CalculationRequest
) -> dict[str, Any]:
    """Price every requested item for the project; an item that cannot be priced (unknown
    code, no factors) is reported in its own line and left out of the totals."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query("project_get"), {"id": request.project_id})
        if await cur.fetchone() is None:
            raise UnknownCode(f"unknown project {request.project_id!r}", field="project_id")
        codes = sorted({line.code for line in request.items})
        await cur.execute(query("items_by_codes"), {"codes": codes})
        items = {row["code"]: row for row in await cur.fetchall()}
    factors = await priced_factors(
        conn, [i["id"] for i in items.values()], project_id=request.project_id,
        as_of=request.as_of,
    )  # fmt: skip
    lines: list[dict[str, Any]] = []
    direct = Decimal(0)
    for line in request.items:
        item = items.get(line.code)
        if item is None:
            lines.append(_failed(line.code, line.quantity, f"unknown item code {line.code!r}"))
            continue
        priced = factors.get(item["id"], [])
        if not priced:
            lines.append(_failed(line.code, line.quantity, f"item {line.code!r} has no factors"))
            continue
        unit = unit_breakdown(priced)
        amount = cents(unit["unit_price"] * line.quantity)
        direct += amount
        lines.append({
            "code": line.code, "name": item["name"], "unit": item["unit"],
            "quantity": str(line.quantity), "status": "ok",
            **{k: shown(v) for k, v in unit.items()},
            "amount": str(amount), "factors": [f.to_dict() for f in priced],
        })  # fmt: skip
    failed = sum(1 for line in lines if line["status"] == "error")
    return {
        "project_id": request.project_id,
        "as_of": (request.as_of or date.today()).isoformat(),
        "items": lines,
        "totals": summarise(direct, request),
        "priced": len(lines) - failed,
        "failed": failed,
        "summary": f"{len(lines) - failed} items priced, {failed} failed",
    }


def _failed(code: str, quantity: Decimal, error: str) -> dict[str, Any]:
    return {"code": code, "quantity": str(quantity), "status": "error", "error": error}
