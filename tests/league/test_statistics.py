"""The ten statistics functions on a league small enough to compute by hand.

Four players (1 Ann, 2 Ben, 3 Cat, 4 Dan), two seasons of four weeks; six matches played
(tests/league/helpers.py), match 7 scheduled. Results in match order, per player:

    Ann  W(2g) L  D(1g) W(3g, cs) D(cs) L(1g)
    Ben  W(1a) W(1g, cs) D W(2a, cs) D(cs) W(2g)
    Cat  L(1g) L  D(1g) L  D(cs) W(1a)
    Dan  L  W(1a, cs) D  L  D(cs)            (not in match 6)

Every expected figure below was worked out from that table, not from the SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from league.sql import query
from league.stats import FUNCTIONS, refresh_all
from tests.league.helpers import load_small_league, rows, store

D = Decimal


async def refreshed(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    await load_small_league(conn)
    async with conn.transaction():
        return await refresh_all(conn)


async def test_season_and_half_season_stats(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    season = await rows(conn, "SELECT * FROM league.season_stats ORDER BY 1, 2")
    # season, player, games, W, D, L, goals, assists, clean sheets, points
    assert season == [
        (1, 1, 4, 2, 1, 1, 6, 0, 1, 7),
        (1, 2, 4, 3, 1, 0, 1, 3, 2, 10),
        (1, 3, 4, 0, 1, 3, 2, 0, 0, 1),
        (1, 4, 4, 1, 1, 2, 0, 1, 1, 4),
        (2, 1, 2, 0, 1, 1, 1, 0, 1, 1),
        (2, 2, 2, 1, 1, 0, 2, 0, 1, 4),
        (2, 3, 2, 1, 1, 0, 0, 1, 1, 4),
        (2, 4, 1, 0, 1, 0, 0, 0, 1, 1),
    ]
    half = await rows(conn, "SELECT * FROM league.half_season_stats ORDER BY 1, 2, 3")
    assert half == [
        (1, 1, 1, 2, 1, 0, 1, 2, 0, 0, 3),
        (1, 1, 2, 2, 2, 0, 0, 1, 1, 1, 6),
        (1, 1, 3, 2, 0, 0, 2, 1, 0, 0, 0),
        (1, 1, 4, 2, 1, 0, 1, 0, 1, 1, 3),
        (1, 2, 1, 2, 1, 1, 0, 4, 0, 1, 4),
        (1, 2, 2, 2, 1, 1, 0, 0, 2, 1, 4),
        (1, 2, 3, 2, 0, 1, 1, 1, 0, 0, 1),
        (1, 2, 4, 2, 0, 1, 1, 0, 0, 0, 1),
        (2, 1, 1, 2, 0, 1, 1, 1, 0, 1, 1),
        (2, 1, 2, 2, 1, 1, 0, 2, 0, 1, 4),
        (2, 1, 3, 2, 1, 1, 0, 0, 1, 1, 4),
        (2, 1, 4, 1, 0, 1, 0, 0, 0, 1, 1),
    ]


async def test_all_time_stats_and_profiles(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    assert await rows(conn, "SELECT * FROM league.all_time_stats ORDER BY 1") == [
        (1, 6, 2, 2, 2, 7, 0, 2, 8, D("1.333")),
        (2, 6, 4, 2, 0, 3, 3, 3, 14, D("2.333")),
        (3, 6, 1, 2, 3, 2, 1, 1, 5, D("0.833")),
        (4, 5, 1, 2, 2, 0, 1, 2, 5, D("1.000")),
    ]
    profiles = await rows(
        conn,
        "SELECT player_id, first_match::text, last_match::text, seasons_played, games,"
        " goals, assists, goals_per_game, win_pct FROM league.player_profiles ORDER BY 1",
    )
    assert profiles == [
        (1, "2026-01-05", "2026-03-09", 2, 6, 7, 0, D("1.167"), D("33.3")),
        (2, "2026-01-05", "2026-03-09", 2, 6, 3, 3, D("0.500"), D("66.7")),
        (3, "2026-01-05", "2026-03-09", 2, 6, 2, 1, D("0.333"), D("16.7")),
        (4, "2026-01-05", "2026-03-02", 2, 5, 0, 1, D("0.000"), D("20.0")),
    ]


async def test_hall_of_fame_ties_share_a_rank(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    assert await rows(conn, "SELECT * FROM league.hall_of_fame ORDER BY 1, 2, 3") == [
        ("appearances", 1, 1, 6),
        ("appearances", 1, 2, 6),
        ("appearances", 1, 3, 6),
        ("assists", 1, 2, 3),
        ("assists", 2, 3, 1),
        ("assists", 2, 4, 1),
        ("clean_sheets", 1, 2, 3),
        ("clean_sheets", 2, 1, 2),
        ("clean_sheets", 2, 4, 2),
        ("goals", 1, 1, 7),
        ("goals", 2, 2, 3),
        ("goals", 3, 3, 2),
        ("points", 1, 2, 14),
        ("points", 2, 1, 8),
        ("points", 3, 3, 5),
        ("points", 3, 4, 5),
    ]


async def test_recent_performance_is_the_last_five_newest_first(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await refreshed(conn)
    assert await rows(conn, "SELECT * FROM league.recent_performance ORDER BY 1") == [
        (1, 5, 5, 0, 5, "LDWDL"),
        (2, 5, 3, 2, 11, "WDWDW"),
        (3, 5, 1, 1, 5, "WDLDL"),
        (4, 5, 0, 1, 5, "DLDWL"),
    ]


async def test_honour_roll_gives_ties_the_honour(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    assert await rows(conn, "SELECT * FROM league.honour_roll ORDER BY 1, 2, 3") == [
        (1, "champion", 2, 10),
        (1, "golden_boot", 1, 6),
        (1, "playmaker", 2, 3),
        (2, "champion", 2, 4),
        (2, "champion", 3, 4),
        (2, "golden_boot", 2, 2),
        (2, "playmaker", 3, 1),
    ]


async def test_match_reports(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    reports = await rows(
        conn,
        "SELECT match_id, goals_a, goals_b, scorers, player_of_match"
        " FROM league.match_reports ORDER BY 1",
    )

    def scorer(pid: int, goals: int) -> dict[str, Any]:
        return {"player_id": pid, "name": {1: "Ann", 2: "Ben", 3: "Cat"}[pid], "goals": goals}

    assert reports == [
        (1, 2, 1, [scorer(1, 2), scorer(3, 1)], 1),
        (2, 0, 1, [scorer(2, 1)], 2),
        (3, 1, 1, [scorer(1, 1), scorer(3, 1)], 1),
        (4, 3, 0, [scorer(1, 3)], 1),
        (5, 0, 0, [], 1),
        (6, 2, 1, [scorer(2, 2), scorer(1, 1)], 2),
    ]


async def test_personal_bests_and_streaks(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    assert await rows(conn, "SELECT * FROM league.personal_bests ORDER BY 1") == [
        (1, 3, 0, 1, 3),
        (2, 2, 2, 2, 6),
        (3, 1, 1, 1, 2),
        (4, 0, 1, 1, 2),
    ]


async def test_season_race_is_cumulative_points_by_week(
    conn: psycopg.AsyncConnection[Any],
) -> None:
    await refreshed(conn)
    race = await rows(conn, "SELECT * FROM league.season_race ORDER BY 1, 3, 2")
    by_player = {(s, p): [] for s, _, p, _ in race}  # type: dict[tuple[int, int], list[int]]
    for season, _, player, points in race:
        by_player[(season, player)].append(points)
    assert by_player == {
        (1, 1): [3, 3, 4, 7],
        (1, 2): [3, 6, 7, 10],
        (1, 3): [0, 0, 1, 1],
        (1, 4): [0, 3, 4, 4],
        (2, 1): [1, 1],
        (2, 2): [1, 4],
        (2, 3): [1, 4],
        (2, 4): [1, 1],
    }


async def test_power_ratings_are_the_documented_ewma(conn: psycopg.AsyncConnection[Any]) -> None:
    await refreshed(conn)
    # Performances (points + goals + assists/2 + clean sheet) and r = 0.3 p + 0.7 r_prev:
    # Ann 5, 0, 2, 7, 2, 1    -> 5, 3.5, 3.05, 4.235, 3.5645, 2.79515
    # Ben 3.5, 5, 1, 5, 2, 5  -> ... 3.706295
    # Cat 1, 0, 2, 0, 2, 3.5  -> ... 1.84387
    # Dan 0, 4.5, 1, 0, 2     -> ... 1.21005
    assert await rows(conn, "SELECT * FROM league.power_ratings ORDER BY 1") == [
        (1, D("2.795"), 6),
        (2, D("3.706"), 6),
        (3, D("1.844"), 6),
        (4, D("1.210"), 5),
    ]


# Each function's table(s), and each table's primary key.
TABLES: dict[str, tuple[str, ...]] = {
    "update_half_and_full_season_stats": ("season_stats", "half_season_stats"),
    "update_aggregated_all_time_stats": ("all_time_stats",),
    "update_aggregated_hall_of_fame": ("hall_of_fame",),
    "update_aggregated_recent_performance": ("recent_performance",),
    "update_aggregated_season_honours_and_records": ("honour_roll",),
    "update_aggregated_match_report_cache": ("match_reports",),
    "update_aggregated_personal_bests": ("personal_bests",),
    "update_aggregated_player_profile_stats": ("player_profiles",),
    "update_aggregated_season_race_data": ("season_race",),
    "update_power_ratings": ("power_ratings",),
}
KEYS: dict[str, tuple[str, ...]] = {
    "season_stats": ("season_id", "player_id"),
    "half_season_stats": ("season_id", "half", "player_id"),
    "all_time_stats": ("player_id",),
    "hall_of_fame": ("category", "player_id"),
    "recent_performance": ("player_id",),
    "honour_roll": ("season_id", "honour", "player_id"),
    "match_reports": ("match_id",),
    "personal_bests": ("player_id",),
    "player_profiles": ("player_id",),
    "season_race": ("season_id", "week", "player_id"),
    "power_ratings": ("player_id",),
}

Key = tuple[Any, ...]
# table -> key -> (row version (ctid, xmin), row)
State = dict[str, dict[Key, tuple[tuple[str, str], tuple[Any, ...]]]]


async def state(conn: psycopg.AsyncConnection[Any]) -> State:
    """Every statistics row by table and key, with its row version."""
    found: State = {}
    for table, key in KEYS.items():
        cur = await conn.execute(f"SELECT ctid::text, xmin::text, * FROM league.{table}")
        names = [column.name for column in cur.description or []][2:]
        found[table] = {}
        for ctid, xmin, *cells in await cur.fetchall():
            row = dict(zip(names, cells, strict=True))
            found[table][tuple(row[k] for k in key)] = ((ctid, xmin), tuple(cells))
    return found


def values(found: State) -> dict[str, dict[Key, tuple[Any, ...]]]:
    return {t: {k: row for k, (_, row) in rows.items()} for t, rows in found.items()}


def changed_keys(before: State, after: State, table: str) -> set[Key]:
    """Keys of ``table`` added, removed, or whose row's values differ."""
    old, new = values(before)[table], values(after)[table]
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


async def test_every_function_is_idempotent(conn: psycopg.AsyncConnection[Any]) -> None:
    first = await refreshed(conn)
    before = await state(conn)
    async with conn.transaction():
        again = await refresh_all(conn)
    # Nothing new: no row changed, none even rewritten (same versions).
    assert again == dict.fromkeys(FUNCTIONS, 0)
    assert await state(conn) == before
    # Into empty tables, every row is a change.
    assert set(first) == set(FUNCTIONS) == set(TABLES)
    assert first == {f: sum(len(before[t]) for t in tables) for f, tables in TABLES.items()}
    assert all(first.values())


async def change_result(conn: psycopg.AsyncConnection[Any]) -> None:
    """Match 6 (season 2, week 2): Ann scores twice more, so team B wins 3-2."""
    await conn.execute(query("result_clear"), {"match_id": 6})
    await store(conn, 6, [(2, "A", 2, 0), (3, "A", 0, 1), (1, "B", 3, 0)])


async def record_new_match(conn: psycopg.AsyncConnection[Any]) -> None:
    """Match 7 (season 2, week 3) is played, by a new player (Eve) too."""
    await conn.execute("INSERT INTO league.players VALUES (5, 'Eve')")
    await store(conn, 7, [(1, "A", 1, 0), (5, "A", 0, 1), (2, "B", 0, 0), (3, "B", 0, 0)])


async def withdraw_result(conn: psycopg.AsyncConnection[Any]) -> None:
    """Match 6 goes back to scheduled: its rows (season 2's week 2, its report) go."""
    await conn.execute(query("result_clear"), {"match_id": 6})
    await conn.execute(
        "UPDATE league.matches SET status = 'scheduled', goals_a = NULL, goals_b = NULL"
        " WHERE id = 6"
    )


@pytest.mark.parametrize("change", [change_result, record_new_match, withdraw_result])
async def test_a_refresh_changes_only_the_affected_rows(
    conn: psycopg.AsyncConnection[Any], change: Callable[[psycopg.AsyncConnection[Any]], Any]
) -> None:
    await refreshed(conn)
    before = await state(conn)
    async with conn.transaction():
        await change(conn)
    async with conn.transaction():
        changed = await refresh_all(conn)
    after = await state(conn)

    # Each function counts exactly the rows that differ, in all its tables.
    assert changed == {
        f: sum(len(changed_keys(before, after, t)) for t in tables) for f, tables in TABLES.items()
    }
    # A row whose values did not change was not rewritten (same ctid and xmin).
    for table in KEYS:
        untouched = before[table].keys() & after[table].keys()
        untouched -= changed_keys(before, after, table)
        assert {k: after[table][k] for k in untouched} == {k: before[table][k] for k in untouched}
    # The change is all in season 2: season 1's race is untouched, though season 2's moved.
    race = changed_keys(before, after, "season_race")
    assert race and {season for season, _, _ in race} == {2}
    assert sum(changed.values()) < sum(len(rows) for rows in before.values())

    # The same values as computing everything from scratch.
    await conn.execute(f"TRUNCATE {', '.join(f'league.{t}' for t in KEYS)}")
    async with conn.transaction():
        await refresh_all(conn)
    assert values(await state(conn)) == values(after)
