"""The league's part of ``make demo`` (``python -m nightcrew_apps.demo``): its demo data,
loaded once, and what to try. ``python -m league.demo [--small] [--reload]`` loads the
demo league alone into ``$NIGHTCREW_DATABASE_URL`` (migrating the league schema first)."""

from __future__ import annotations

import argparse
import asyncio

import psycopg
from rich.console import Console

from league.demo_data import SMALL, DemoSize, load_demo
from league.sql import query


async def prepare(url: str, console: Console, *, reload: bool, small: bool) -> None:
    """Load the demo league into the migrated database at ``url`` unless it is already
    there (``reload``: replace it; ``small``: three seasons instead of ten)."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(query("demo_players_count"))
        row = await cur.fetchone()
        if row and row[0] and not reload:
            console.print(f"league demo already loaded ({row[0]} players; --reload to replace)")
            return
        size = SMALL if small else DemoSize()
        with console.status(f"generating the demo league ({size.seasons} seasons)"):
            counts = await load_demo(conn, size)
    console.print(
        f"league: {counts['players']} players, {counts['seasons']} seasons, "
        f"{counts['matches']} matches, {counts['appearances']} appearances, "
        f"{counts['statistics_changed']} statistics rows changed in {counts['seconds']} s"
    )


def hints(base: str, user_key: str) -> list[str]:
    """Requests to try against the running demo at ``base`` with a user's API key."""
    return [
        f"League page (Background Job Status, live): {base}/league",
        f"curl '{base}/api/league/stats/all_time_stats'     # Dara Okafor, the record scorer",
        f"curl '{base}/api/league/stats/personal_bests'     # Sam Reyes's unbeaten run",
        f"curl -H 'Authorization: Bearer <admin key>' -H 'Content-Type: application/json' "
        f'-d \'{{"triggeredBy": "admin", "requestId": "try-1"}}\' '
        f"{base}/api/league/stats-jobs",
    ]


def main(argv: list[str] | None = None) -> None:
    """``python -m league.demo``: migrate the league schema and load the demo league."""
    from league.app import build_app

    parser = argparse.ArgumentParser(prog="python -m league.demo", description=main.__doc__)
    parser.add_argument("--small", action="store_true", help="three seasons instead of ten")
    parser.add_argument("--reload", action="store_true", help="replace a loaded league")
    args = parser.parse_args(argv)
    app = build_app()
    app.migrate()
    asyncio.run(prepare(app.url, Console(), reload=args.reload, small=args.small))
    app.close()


if __name__ == "__main__":
    main()


async def stop() -> None:
    """Nothing of this application runs in the background of the demo."""
