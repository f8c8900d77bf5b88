"""A generator of realistic demo data: catalogue, ~1,000 items, projects with dated rates,
estimates with six months of usage and daily price snapshots — with the seed's stories:
concrete and rebar used together in most estimates, steel prices up ~22 % in one month.

Loaded with COPY and set-based SQL: the full demo (100k usage rows) takes seconds.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from estimating import popularity, prices, reports
from estimating.sql import query

# (code, name, unit, rate) per kind; STEEL-* entries carry the steel price story.
MATERIALS = [
    *[(f"CEM-C{g}", f"Ready-mix concrete C{g}/{g + 5}", "m3", 95 + g * 2.2)
      for g in (15, 20, 25, 30, 35, 40, 45, 50)],
    *[(f"STEEL-B{d}", f"Steel rebar B500 {d}mm", "kg", 0.92 + d / 200)
      for d in (8, 10, 12, 16, 20, 25, 32)],
    ("STEEL-MESH", "Steel mesh A393", "m2", 6.8),
    ("STEEL-SECTION", "Structural steel", "kg", 1.9),
    ("PLYWOOD-18", "Formwork plywood 18mm", "m2", 14.5),
    ("TIMBER-SW", "Softwood timber", "m3", 420),
    ("FORM-STEEL", "Steel formwork panels (hire)", "m2", 3.2),
    ("SAND-SHARP", "Sharp sand", "t", 38),
    ("AGG-20", "Aggregate 20mm", "t", 34), ("CEMENT-BAG", "Cement 25kg", "bag", 6.4),
    ("BRICK-COMMON", "Common bricks", "1000", 420), ("BLOCK-100", "Concrete block 100mm", "m2", 11),
    ("MORTAR", "Mortar mix", "m3", 160), ("DPM-1200", "Damp proof membrane", "m2", 1.1),
    ("INSUL-100", "Insulation board 100mm", "m2", 12.5), ("PLASTER", "Gypsum plaster", "bag", 9.8),
    ("PAINT-EMUL", "Emulsion paint", "l", 4.6), ("TILE-CER", "Ceramic tiles", "m2", 18),
    ("PIPE-PVC-110", "PVC pipe 110mm", "m", 7.2), ("CABLE-2.5", "Cable 2.5mm2", "m", 0.8),
    ("ASPHALT", "Asphalt surfacing", "t", 68), ("KERB", "Precast kerb", "m", 9.5),
]  # fmt: skip
LABOUR = [
    ("LAB-CONCRETOR", "Concretor", "h", 38), ("LAB-STEELFIXER", "Steel fixer", "h", 42),
    ("LAB-CARPENTER", "Formwork carpenter", "h", 40), ("LAB-BRICKLAYER", "Bricklayer", "h", 39),
    ("LAB-GENERAL", "General labourer", "h", 26), ("LAB-ELECTRICIAN", "Electrician", "h", 48),
    ("LAB-PLUMBER", "Plumber", "h", 47), ("LAB-PAINTER", "Painter", "h", 33),
    ("LAB-OPERATOR", "Plant operator", "h", 41), ("LAB-TILER", "Tiler", "h", 36),
]  # fmt: skip
EQUIPMENT = [
    ("PLANT-PUMP", "Concrete boom pump", "h", 145), ("PLANT-MIXER", "Site mixer", "h", 12),
    ("PLANT-CRANE-25T", "Mobile crane 25t", "h", 120), ("PLANT-EXC-20T", "Excavator 20t", "h", 75),
    ("PLANT-VIBRATOR", "Poker vibrator", "h", 4.5), ("PLANT-SCAFFOLD", "Scaffold (hire)", "h", 2.2),
    ("PLANT-ROLLER", "Vibratory roller", "h", 48), ("PLANT-DUMPER", "Site dumper", "h", 22),
]  # fmt: skip

SNAPSHOT_EVERY_DAYS = 7
DEMO_USERS = ("estimator", "planner", "surveyor")
"""Project owners, in turn (PRJ-001 estimator, PRJ-002 planner...); the demo's user API key
is the estimator's, so it sees a third of the projects and the whole library."""
WORDS_A = [
    "Riverside",
    "Harbour",
    "Northgate",
    "Oakwood",
    "Station",
    "Market",
    "Kings",
    "Meadow",
    "Quarry",
    "Cathedral",
    "Canal",
    "Hillside",
    "Parkview",
    "Foundry",
]
WORDS_B = [
    "Tower",
    "Bridge",
    "School",
    "Hospital wing",
    "Depot",
    "Apartments",
    "Car park",
    "Library",
    "Offices",
    "Warehouse",
    "Retail park",
    "Clinic",
]


@dataclass
class Family:
    """A family of library items: code pattern, factor recipe and variants."""

    prefix: str
    name: str
    unit: str
    category: str
    materials: list[tuple[str, float, float]]
    labour: list[tuple[str, float, float, float]]
    equipment: list[tuple[str, float, float]]
    variants: list[str] = field(default_factory=lambda: [""])


def families() -> list[Family]:
    """The item families; concrete grades and rebar sizes keep their well-known codes."""
    fams = [
        Family(
            f"CONC-C{g}",
            f"Concrete C{g}/{g + 5} in slabs",
            "m3",
            "concrete",
            [(f"CEM-C{g}", 1.0, 5)],
            [("LAB-CONCRETOR", 0.8, 0.9, 3)],
            [("PLANT-PUMP", 0.15, 0.8), ("PLANT-VIBRATOR", 0.5, 1.0)],
            ["", "-WALL", "-COLUMN", "-BEAM", "-FOOTING", "-PUMPED"],
        )
        for g in (15, 20, 25, 30, 35, 40, 45, 50)
    ]
    fams += [
        Family(
            f"REBAR-{d}MM",
            f"Rebar {d}mm cut, bent and fixed",
            "t",
            "steel",
            [(f"STEEL-B{d}", 1000.0, 2.5)],
            [("LAB-STEELFIXER", 10 - d / 5, 1.0, 1)],
            [],
            ["", "-SLAB", "-WALL", "-COLUMN"],
        )
        for d in (8, 10, 12, 16, 20, 25, 32)
    ]
    fams += [
        Family("FORMWORK-PLYWOOD", "Plywood formwork", "m2", "formwork",
               [("PLYWOOD-18", 0.35, 10), ("TIMBER-SW", 0.01, 10)],
               [("LAB-CARPENTER", 0.9, 0.95, 2)], [], ["", "-SOFFIT", "-WALL", "-COLUMN"]),
        Family("FORMWORK-STEEL", "Steel system formwork", "m2", "formwork",
               [("FORM-STEEL", 1.0, 0)], [("LAB-CARPENTER", 0.5, 1.0, 2)],
               [("PLANT-CRANE-25T", 0.05, 0.6)], ["", "-WALL", "-COLUMN"]),
        Family("MESH-A393", "Steel mesh A393 laid", "m2", "steel",
               [("STEEL-MESH", 1.0, 7.5)], [("LAB-STEELFIXER", 0.06, 1.0, 1)], []),
        Family("STEEL-FRAME", "Structural steel frame", "t", "steel",
               [("STEEL-SECTION", 1000.0, 1)], [("LAB-STEELFIXER", 12, 0.9, 3)],
               [("PLANT-CRANE-25T", 3, 0.7)], ["", "-LIGHT", "-HEAVY"]),
        Family("BRICKWORK", "Brickwork half brick", "m2", "masonry",
               [("BRICK-COMMON", 0.06, 5), ("MORTAR", 0.02, 10)],
               [("LAB-BRICKLAYER", 1.2, 1.0, 1), ("LAB-GENERAL", 0.6, 1.0, 1)],
               [("PLANT-MIXER", 0.2, 0.5)], ["-110", "-230", "-FACING"]),
        Family("BLOCKWORK", "Blockwork 100mm", "m2", "masonry",
               [("BLOCK-100", 1.0, 5), ("MORTAR", 0.01, 10)], [("LAB-BRICKLAYER", 0.7, 1.0, 1)],
               [], ["", "-140", "-215"]),
        Family("EXCAVATION", "Bulk excavation", "m3", "earthworks", [],
               [("LAB-OPERATOR", 0.05, 1.0, 1)],
               [("PLANT-EXC-20T", 0.05, 0.85), ("PLANT-DUMPER", 0.04, 0.8)],
               ["-0-1M", "-1-2M", "-2-4M", "-ROCK"]),
        Family("SUBBASE", "Granular sub-base", "m3", "earthworks", [("AGG-20", 2.1, 5)],
               [("LAB-GENERAL", 0.2, 1.0, 1)], [("PLANT-ROLLER", 0.03, 0.8)]),
        Family("SCREED", "Sand-cement screed", "m2", "finishes",
               [("SAND-SHARP", 0.09, 5), ("CEMENT-BAG", 0.3, 5)], [("LAB-GENERAL", 0.3, 1, 1)],
               [], ["-50", "-75"]),
        Family("PLASTERING", "Plaster to walls", "m2", "finishes", [("PLASTER", 0.4, 10)],
               [("LAB-GENERAL", 0.4, 0.9, 1)], []),
        Family("PAINTING", "Emulsion two coats", "m2", "finishes", [("PAINT-EMUL", 0.25, 5)],
               [("LAB-PAINTER", 0.15, 1.0, 1)], [], ["", "-CEILING", "-EXTERNAL"]),
        Family("TILING", "Ceramic wall tiling", "m2", "finishes", [("TILE-CER", 1.0, 8)],
               [("LAB-TILER", 0.9, 1.0, 1)], [], ["", "-FLOOR"]),
        Family("DRAINAGE-PVC", "PVC drainage 110mm", "m", "drainage", [("PIPE-PVC-110", 1, 5)],
               [("LAB-PLUMBER", 0.3, 1.0, 1)], [("PLANT-EXC-20T", 0.05, 0.5)]),
        Family("ELEC-CABLE", "Cabling 2.5mm2", "m", "services", [("CABLE-2.5", 1, 5)],
               [("LAB-ELECTRICIAN", 0.08, 1.0, 1)], []),
        Family("DPM", "Damp proof membrane", "m2", "substructure", [("DPM-1200", 1.1, 5)],
               [("LAB-GENERAL", 0.05, 1, 1)], []),
        Family("INSULATION", "Insulation board", "m2", "envelope", [("INSUL-100", 1.0, 5)],
               [("LAB-CARPENTER", 0.2, 1, 1)], []),
        Family("SURFACING", "Asphalt surfacing", "t", "external", [("ASPHALT", 1.0, 3)],
               [("LAB-GENERAL", 0.5, 1, 2)], [("PLANT-ROLLER", 0.1, 0.8)]),
        Family("KERBS", "Precast kerbs", "m", "external", [("KERB", 1.0, 2), ("MORTAR", 0.01, 10)],
               [("LAB-GENERAL", 0.4, 1, 2)], []),
        Family("PLANT-HIRE", "Plant hire", "h", "plant", [], [("LAB-OPERATOR", 1, 1, 1)],
               [("PLANT-CRANE-25T", 1, 1)], ["-CRANE", "-PUMP", "-EXCAVATOR"]),
        Family("SCAFFOLDING", "Scaffold access", "m2", "temporary", [],
               [("LAB-GENERAL", 0.1, 1, 2)], [("PLANT-SCAFFOLD", 4, 1)]),
    ]  # fmt: skip
    return fams


@dataclass
class DemoSize:
    """How much data to generate."""

    items: int = 1000
    projects: int = 200
    estimates: int = 20_000
    months: int = 6


def _item_rows(rng: random.Random, size: DemoSize) -> list[tuple[str, str, str, str, Family]]:
    base = [(f.prefix + v, f"{f.name}{v.replace('-', ' ').lower()}", f.unit, f.category, f)
            for f in families() for v in f.variants]  # fmt: skip
    rows = base[: size.items]
    n = 0
    while len(rows) < size.items:  # regional and specification variants of every family
        code, name, unit, category, fam = base[n % len(base)]
        rows.append((f"{code}-SPEC{n // len(base) + 1}", f"{name} (spec {n // len(base) + 1})",
                     unit, category, fam))  # fmt: skip
        n += 1
    return rows


async def load_demo(
    conn: psycopg.AsyncConnection[Any],
    size: DemoSize | None = None,
    *,
    seed: int = 7,
    today: date | None = None,
    spike_month: date | None = None,
) -> dict[str, Any]:
    """Generate and load the demo data into an empty estimating schema; return counts.

    ``spike_month`` (first day of a month) is when steel prices jump ~22 %; by default
    the third month before today's, so a six-month trend shows it.
    """
    started = time.perf_counter()
    size = size or DemoSize()
    rng = random.Random(seed)
    today = today or datetime.now(UTC).date()
    first = _add_months(today.replace(day=1), -(size.months - 1))
    spike = spike_month or _add_months(today.replace(day=1), -2)
    months = [_add_months(first, k) for k in range(size.months)]

    def drift(code: str, month: date) -> float:  # ~0.6 %/month inflation, steel jumps
        k = (month.year - first.year) * 12 + month.month - first.month
        jump = 1.22 if code.startswith("STEEL") and month >= spike else 1.0
        return (1 + 0.006 * k) * jump

    entries = [("material", *m) for m in MATERIALS] + [("labour", *m) for m in LABOUR] + [
        ("equipment", *m) for m in EQUIPMENT]  # fmt: skip
    async with conn.transaction():
        async with conn.cursor() as cur:
            async with cur.copy("COPY estimating.catalogue (kind, code, name, unit, rate)"
                                " FROM STDIN") as copy:  # fmt: skip
                for kind, code, name, unit, rate in entries:
                    await copy.write_row((kind, code, name, unit,
                                          _money(rate * drift(code, months[-1]))))  # fmt: skip
            await cur.execute("SELECT code, id FROM estimating.catalogue")
            cat_ids = dict(await cur.fetchall())
            base_rate = {code: rate for _, code, _, _, rate in entries}
            async with cur.copy(
                "COPY estimating.catalogue_rate_history"
                " (catalogue_id, effective_from, rate) FROM STDIN"
            ) as copy:
                for code, cid in cat_ids.items():
                    for month in months:
                        await copy.write_row(
                            (cid, month, _money(base_rate[code] * drift(code, month)))
                        )
            items = _item_rows(rng, size)
            async with cur.copy("COPY estimating.items (code, name, unit, category)"
                                " FROM STDIN") as copy:  # fmt: skip
                for code, name, unit, category, _ in items:
                    await copy.write_row((code, name, unit, category))
            await cur.execute("SELECT code, id FROM estimating.items")
            item_ids = dict(await cur.fetchall())
            async with cur.copy(
                "COPY estimating.item_factors (item_id, catalogue_id, quantity_per_unit,"
                " wastage_percentage, hours_per_unit, productivity_factor, crew_size,"
                " utilization_factor) FROM STDIN"
            ) as copy:
                for code, _, _, _, fam in items:
                    wiggle = 1 if "-SPEC" not in code else rng.uniform(0.9, 1.1)
                    iid = item_ids[code]
                    for mcode, qty, wastage in fam.materials:
                        await copy.write_row((iid, cat_ids[mcode], round(qty * wiggle, 4),
                                              wastage, None, None, None, None))  # fmt: skip
                    for lcode, hours, prod, crew in fam.labour:
                        await copy.write_row(
                            (
                                iid,
                                cat_ids[lcode],
                                None,
                                None,
                                round(hours * wiggle, 4),
                                prod,
                                crew,
                                None,
                            )
                        )
                    for ecode, hours, util in fam.equipment:
                        await copy.write_row(
                            (
                                iid,
                                cat_ids[ecode],
                                None,
                                None,
                                round(hours * wiggle, 4),
                                None,
                                None,
                                util,
                            )
                        )
            projects = [(f"PRJ-{n:03}", f"{rng.choice(WORDS_A)} {rng.choice(WORDS_B)}")
                        for n in range(1, size.projects + 1)]  # fmt: skip
            async with cur.copy("COPY estimating.projects (id, name) FROM STDIN") as copy:
                for row in projects:
                    await copy.write_row(row)
            async with cur.copy("COPY estimating.project_members (project_id, user_id, role)"
                                " FROM STDIN") as copy:  # fmt: skip
                for n, (pid, _) in enumerate(projects):
                    await copy.write_row((pid, DEMO_USERS[n % len(DEMO_USERS)], "owner"))
            steel = [c for c in cat_ids if c.startswith("STEEL")]
            others = [c for c in cat_ids if not c.startswith("STEEL")]
            rate_rows = 0
            async with cur.copy("COPY estimating.project_rates (project_id, catalogue_id,"
                                " effective_from, rate) FROM STDIN") as copy:  # fmt: skip
                for pid, _ in projects:
                    local = rng.uniform(0.9, 1.15)
                    for code in steel + rng.sample(others, min(15, len(others))):
                        for month in months:
                            noise = rng.uniform(0.98, 1.02)
                            rate = base_rate[code] * drift(code, month) * local * noise
                            await copy.write_row((pid, cat_ids[code], month, _money(rate)))
                            rate_rows += 1
            usage_rows = await _load_usage(conn, rng, size, projects, item_ids, today, first)
        load_seconds = time.perf_counter() - started
    # Past prices weekly and on each month's first day (a daily backfill of six months
    # costs ~25 s); today's in full, with every project's unit prices.
    day, snapshot_days = first, 0
    while day < today:
        if (day - first).days % SNAPSHOT_EVERY_DAYS == 0 or day.day == 1:
            await prices.capture_snapshot(conn, day, projects=False)
            snapshot_days += 1
        day += timedelta(days=1)
    await prices.capture_snapshot(conn, today)
    spikes = await prices.detect_spikes(conn, spike + timedelta(days=1))
    summary = await popularity.aggregate_popularity(conn)
    offers = await conn.execute(query("demo_suggestion_offers"), {"now": datetime.now(UTC)})
    # The report of the last full week (Sunday to Saturday), as the Sunday run leaves it.
    await reports.compute_weekly_report(conn, today - timedelta(days=(today.weekday() + 1) % 7))
    return {
        "catalogue": len(cat_ids), "items": len(item_ids), "projects": len(projects),
        "project_rates": rate_rows, "estimates": size.estimates, "usage": usage_rows,
        "snapshot_days": snapshot_days + 1, "spike_month": spike.isoformat(),
        "steel_alerts": len(spikes), "cooccurrence_pairs": summary["pairs"],
        "suggestion_offers": offers.rowcount,
        "load_seconds": round(load_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
    }  # fmt: skip


async def _load_usage(
    conn: psycopg.AsyncConnection[Any],
    rng: random.Random,
    size: DemoSize,
    projects: list[tuple[str, str]],
    item_ids: dict[str, int],
    today: date,
    first: date,
) -> int:
    """Estimates and their usage: most are structural (concrete + rebar + formwork)."""
    codes = list(item_ids)
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(codes))]  # a few items are popular
    rng.shuffle(codes)
    concrete = [c for c in codes if c.startswith("CONC-")]
    rebar = [c for c in codes if c.startswith("REBAR-")]
    formwork = [c for c in codes if c.startswith("FORMWORK-")]
    span = (datetime.combine(today, datetime.min.time(), UTC)
            - datetime.combine(first, datetime.min.time(), UTC)).total_seconds()  # fmt: skip
    now = datetime.now(UTC)
    estimates: list[tuple[str, str]] = []
    lines: list[tuple[str, list[str], datetime]] = []
    for n in range(size.estimates):
        pid = projects[rng.randrange(len(projects))][0]
        estimates.append((pid, f"EST-{n:05}"))
        chosen: list[str] = []
        if rng.random() < 0.8:  # structural: concrete with rebar, mostly CONC-C25 + REBAR-12MM
            conc = (
                "CONC-C25"
                if rng.random() < 0.5 and "CONC-C25" in item_ids
                else rng.choice(concrete)
            )
            chosen.append(conc)
            if rng.random() < 0.9:
                chosen.append("REBAR-12MM" if conc == "CONC-C25" and "REBAR-12MM" in item_ids
                              else rng.choice(rebar))  # fmt: skip
            if rng.random() < 0.6 and formwork:
                chosen.append("FORMWORK-PLYWOOD" if rng.random() < 0.7 else rng.choice(formwork))
        chosen += rng.choices(codes, weights=weights, k=rng.randint(1, 4))
        # Later months are busier (trend up); a few estimates are dated "today".
        when = now - timedelta(seconds=span * (1 - rng.random() ** 0.8))
        lines.append((pid, list(dict.fromkeys(chosen)), when))
    async with conn.cursor() as cur:
        async with cur.copy(
            "COPY estimating.estimates (project_id, estimate_id) FROM STDIN"
        ) as copy:
            for row in estimates:
                await copy.write_row(row)
        await cur.execute("SELECT project_id, estimate_id, key FROM estimating.estimates")
        keys = {(p, e): k for p, e, k in await cur.fetchall()}
        count = 0
        async with cur.copy("COPY estimating.usage (item_id, project_id, estimate_key, quantity,"
                            " used_at) FROM STDIN") as copy:  # fmt: skip
            for (pid, est), (_, chosen, when) in zip(estimates, lines, strict=True):
                for code in chosen:
                    qty = Decimal(str(round(rng.lognormvariate(2.5, 0.9), 2)))
                    await copy.write_row((item_ids[code], pid, keys[(pid, est)], qty, when))
                    count += 1
    return count


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 2)))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
