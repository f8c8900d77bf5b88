"""The estimating application's part of ``make demo`` (``python -m nightcrew_apps.demo``):
its demo data, loaded once, and the requests to try."""

from __future__ import annotations

import psycopg
from rich.console import Console

from estimating.demo_data import DemoSize, load_demo

SMALL = DemoSize(items=150, projects=10, estimates=400)
"""The data set of ``--small`` (quick starts, tests)."""


async def prepare(url: str, console: Console, *, reload: bool, small: bool) -> None:
    """Load the demo data into the migrated database at ``url`` unless it is already there
    (``reload``: replace it; ``small``: a small data set)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM estimating.items")
        row = await cur.fetchone()
        if row and row[0] and not reload:
            console.print(f"demo data already loaded ({row[0]} items; --reload to replace)")
            return
        if row and row[0]:
            await conn.execute(
                "TRUNCATE estimating.catalogue, estimating.items, estimating.projects,"
                " estimating.usage, estimating.usage_archive, estimating.weekly_reports,"
                " estimating.estimates_archive"
                " RESTART IDENTITY CASCADE"
            )
        size = SMALL if small else DemoSize()
        with console.status(
            f"generating demo data ({size.items:,} items, {size.projects:,} projects, "
            f"{size.estimates:,} estimates)"
        ):
            counts = await load_demo(conn, size)
        console.print(
            f"loaded {counts['items']} items, {counts['projects']} projects, "
            f"{counts['estimates']} estimates, {counts['usage']} usage rows, "
            f"{counts['snapshot_days']} price snapshots in {counts['seconds']} s "
            f"(steel +22 % from {counts['spike_month']})"
        )


def hints(base: str, user_key: str) -> list[str]:
    """Requests to try against the running demo at ``base`` with a user's API key."""
    auth = f'curl -H "Authorization: Bearer {user_key}"'
    return [
        f"Estimating pages: {base}/estimating",
        f"{auth} '{base}/api/estimating/suggestions?items=CONC-C25'",
        f"{auth} '{base}/api/estimating/items/CONC-C25/price-trend?months=6'",
        f"{auth} '{base}/api/estimating/items/REBAR-12MM/price-trend?months=6'",
        f"{auth} '{base}/api/estimating/projects/PRJ-001/rates'   # estimator owns PRJ-001",
        f"{auth} '{base}/api/estimating/reports/weekly'   # last week's usage report",
        f"{auth} '{base}/api/estimating/suggestions/uptake'   # goal: 80 % of suggestions used",
    ]


async def stop() -> None:
    """Nothing of this application runs in the background of the demo."""
