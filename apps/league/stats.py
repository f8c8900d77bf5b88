"""The ten statistics functions (SQL, in the app's migrations), their cache tags, and the
tables each tag is served from."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

FUNCTIONS: dict[str, tuple[str, ...]] = {
    "update_half_and_full_season_stats": ("season_stats", "half_season_stats"),
    "update_aggregated_all_time_stats": ("all_time_stats",),
    "update_aggregated_hall_of_fame": ("hall_of_fame",),
    "update_aggregated_recent_performance": ("recent_performance",),
    "update_aggregated_season_honours_and_records": ("honour_roll",),
    "update_aggregated_match_report_cache": ("match_report",),
    "update_aggregated_personal_bests": ("personal_bests",),
    "update_aggregated_player_profile_stats": ("player_profile_stats",),
    "update_aggregated_season_race_data": ("season_race_data",),
    "update_power_ratings": ("player_power_rating",),
}
"""Each statistics function (``league.<name>()``) and the cache tags its refresh changes."""

TAGS: tuple[str, ...] = tuple(tag for tags in FUNCTIONS.values() for tag in tags)
"""Every cache tag, in the order of :data:`FUNCTIONS`."""

SEASON_TAGS = frozenset(
    {"season_stats", "half_season_stats", "honour_roll", "match_report", "season_race_data"}
)
"""Tags whose statistics belong to a season (``GET /api/league/stats/{tag}?season=N``)."""


def tags_of(functions: list[str]) -> list[str]:
    """The cache tags of ``functions``, in :data:`TAGS` order."""
    wanted = {tag for name in functions for tag in FUNCTIONS.get(name, ())}
    return [tag for tag in TAGS if tag in wanted]


async def refresh(conn: psycopg.AsyncConnection[Any], function: str) -> int:
    """Run the statistics function ``function`` on ``conn``; return the rows it changed
    (inserted + updated + deleted: 0 when nothing is new)."""
    if function not in FUNCTIONS:
        raise ValueError(f"unknown statistics function {function!r}")
    statement = sql.SQL("SELECT league.{}()").format(sql.Identifier(function))
    cur = await conn.execute(statement)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def refresh_all(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    """Run the ten functions one after the other on ``conn`` (demo loading, the benchmark's
    sequential baseline); return the rows each changed."""
    return {name: await refresh(conn, name) for name in FUNCTIONS}
