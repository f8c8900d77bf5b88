"""The small league computed by hand (tests/league/test_statistics.py has its figures),
and helpers to ask for runs and wait for them."""

from __future__ import annotations

import time
from datetime import date
from typing import Any
from uuid import UUID

import psycopg

from league.sql import query
from nightcrew import App
from tests.support import await_until

PLAYERS = {1: "Ann", 2: "Ben", 3: "Cat", 4: "Dan"}
SEASONS = [(1, "Season 1", date(2026, 1, 5), 4), (2, "Season 2", date(2026, 3, 2), 4)]
# match id: (season, week, played on, [(player, team, goals, assists), ...]); match 7 is
# scheduled, not played.
MATCHES: dict[int, tuple[int, int, date, list[tuple[int, str, int, int]]]] = {
    1: (1, 1, date(2026, 1, 5), [(1, "A", 2, 0), (2, "A", 0, 1), (3, "B", 1, 0), (4, "B", 0, 0)]),
    2: (1, 2, date(2026, 1, 12), [(1, "A", 0, 0), (3, "A", 0, 0), (2, "B", 1, 0), (4, "B", 0, 1)]),
    3: (1, 3, date(2026, 1, 19), [(1, "A", 1, 0), (4, "A", 0, 0), (2, "B", 0, 0), (3, "B", 1, 0)]),
    4: (1, 4, date(2026, 1, 26), [(1, "A", 3, 0), (2, "A", 0, 2), (3, "B", 0, 0), (4, "B", 0, 0)]),
    5: (2, 1, date(2026, 3, 2), [(1, "A", 0, 0), (2, "A", 0, 0), (3, "B", 0, 0), (4, "B", 0, 0)]),
    6: (2, 2, date(2026, 3, 9), [(2, "A", 2, 0), (3, "A", 0, 1), (1, "B", 1, 0)]),
    7: (2, 3, date(2026, 3, 16), []),
}


async def load_small_league(conn: psycopg.AsyncConnection[Any]) -> None:
    """Insert the hand-computed league; results go through the app's own result query."""
    async with conn.transaction():
        for pid, name in PLAYERS.items():
            await conn.execute("INSERT INTO league.players VALUES (%s, %s)", (pid, name))
        for season in SEASONS:
            await conn.execute("INSERT INTO league.seasons VALUES (%s, %s, %s, %s)", season)
        for mid, (season_id, week, played_on, appearances) in MATCHES.items():
            await conn.execute(
                "INSERT INTO league.matches (id, season_id, week, played_on)"
                " VALUES (%s, %s, %s, %s)",
                (mid, season_id, week, played_on),
            )
            if appearances:
                await store(conn, mid, appearances)


async def store(
    conn: psycopg.AsyncConnection[Any], match_id: int, appearances: list[tuple[int, str, int, int]]
) -> None:
    """Store a result with the app's query (in the caller's transaction)."""
    cur = await conn.execute(
        query("result_store"),
        {
            "match_id": match_id,
            "players": [a[0] for a in appearances],
            "teams": [a[1] for a in appearances],
            "goals": [a[2] for a in appearances],
            "assists": [a[3] for a in appearances],
        },
    )
    await cur.fetchall()


async def rows(
    conn: psycopg.AsyncConnection[Any], statement: str, params: Any = None
) -> list[tuple[Any, ...]]:
    """Every row of ``statement``."""
    cur = await conn.execute(statement, params)
    return await cur.fetchall()


async def run_status(conn: psycopg.AsyncConnection[Any], run_id: UUID | str) -> str | None:
    """The run's status."""
    cur = await conn.execute("SELECT status FROM league.runs WHERE id = %s", (run_id,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def wait_for_run(
    app: App,
    run_id: UUID | str,
    statuses: tuple[str, ...] = ("completed", "failed"),
    timeout: float = 20.0,
) -> str:
    """Wait until the run ends (or reaches one of ``statuses``); return its status."""
    pool = await app.apool()
    found: list[str | None] = [None]

    async def ended() -> bool:
        async with pool.connection() as conn:
            found[0] = await run_status(conn, run_id)
        return found[0] in statuses

    await await_until(ended, timeout=timeout, what=f"run {run_id} to reach {statuses}")
    return str(found[0])


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (``time.perf_counter()``)."""
    return (time.perf_counter() - started) * 1000
