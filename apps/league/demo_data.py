"""The demo league: 40 players, 10 seasons of 40 weekly five-a-side matches, generated
from a fixed seed, with two stories a fan would look for:

- a record scorer: Dara Okafor, the best finisher, who tops the all-time goals;
- an unbeaten run: Sam Reyes does not lose a game from the start of season 4 to the
  middle of season 5 (his longest unbeaten streak, on the personal bests).

The current season (the tenth) has played its first 12 weeks; the rest are scheduled, so
``POST /api/league/matches/{id}/result`` has matches to record.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from league.sql import query
from league.stats import refresh_all

SEED = 1977
FIRST_NAMES = (
    "Dara", "Sam", "Alex", "Jo", "Robin", "Kai", "Noor", "Ines", "Tomas", "Mia", "Luca",
    "Aiko", "Ravi", "Zoe", "Omar", "Lena", "Finn", "Ada", "Yusuf", "Eva",
)  # fmt: skip
LAST_NAMES = (
    "Okafor", "Reyes", "Novak", "Hughes", "Silva", "Tanaka", "Haddad", "Berg", "Costa",
    "Walsh", "Moreau", "Ivanova", "Patel", "Keane", "Lindqvist", "Mensah", "Duarte", "Kim",
    "Fischer", "Obi",
)  # fmt: skip
RECORD_SCORER = 1
"""Dara Okafor."""
UNBEATEN = 2
"""Sam Reyes."""


@dataclass(frozen=True)
class DemoSize:
    """How much league to generate."""

    players: int = 40
    seasons: int = 10
    weeks: int = 40
    played_in_last_season: int = 12
    team_size: int = 5


SMALL = DemoSize(seasons=3)
"""A quicker league (``--small``, tests)."""


def player_names(count: int) -> list[str]:
    """``count`` distinct names; the first two are the stories' players."""
    names = [f"{FIRST_NAMES[i % 20]} {LAST_NAMES[(i * 7 + i // 20) % 20]}" for i in range(count)]
    names[0], names[1] = "Dara Okafor", "Sam Reyes"
    return names


def generate(size: DemoSize) -> dict[str, list[tuple[Any, ...]]]:
    """Rows of players, seasons, matches and appearances (deterministic)."""
    rng = random.Random(SEED)
    names = player_names(size.players)
    finishing = {pid: 0.15 + 0.25 * rng.random() for pid in range(1, size.players + 1)}
    finishing[RECORD_SCORER] = 0.9
    players = [(pid, name) for pid, name in enumerate(names, start=1)]
    seasons: list[tuple[Any, ...]] = []
    matches: list[tuple[Any, ...]] = []
    appearances: list[tuple[Any, ...]] = []
    match_id = 0
    for season in range(1, size.seasons + 1):
        starts = _first_monday_of_september(2016 + season)
        seasons.append((season, f"{2016 + season}-{(2017 + season) % 100:02d}", starts, size.weeks))
        for week in range(1, size.weeks + 1):
            match_id += 1
            played_on = starts + timedelta(weeks=week - 1)
            if season == size.seasons and week > size.played_in_last_season:
                matches.append((match_id, season, week, played_on, "scheduled", None, None))
                continue
            picked = rng.sample(range(1, size.players + 1), 2 * size.team_size)
            if season in (4, 5) and UNBEATEN not in picked:
                picked[0] = UNBEATEN  # he never misses a game during his run
            teams = {"A": picked[: size.team_size], "B": picked[size.team_size :]}
            goals = {pid: _goals(rng, finishing[pid]) for pid in picked}
            _protect_unbeaten_run(season, week, size, teams, goals)
            score = {t: sum(goals[p] for p in members) for t, members in teams.items()}
            matches.append((match_id, season, week, played_on, "completed",
                            score["A"], score["B"]))  # fmt: skip
            for team, members in teams.items():
                other = "B" if team == "A" else "A"
                result = _result(score[team], score[other])
                for pid in members:
                    assists = min(score[team] - goals[pid], _assists(rng))
                    appearances.append((match_id, pid, team, goals[pid], max(assists, 0),
                                        score[other] == 0, result))  # fmt: skip
    return {"players": players, "seasons": seasons, "matches": matches,
            "appearances": appearances}  # fmt: skip


def _protect_unbeaten_run(
    season: int, week: int, size: DemoSize, teams: dict[str, list[int]], goals: dict[int, int]
) -> None:
    """From season 4 to the middle of season 5, Sam Reyes's team never loses: it scores
    one more goal (his) when it was behind."""
    if not (season == 4 or (season == 5 and week <= size.weeks // 2)):
        return
    mine = "A" if UNBEATEN in teams["A"] else "B"
    other = "B" if mine == "A" else "A"
    behind = sum(goals[p] for p in teams[other]) - sum(goals[p] for p in teams[mine])
    if behind > 0:
        goals[UNBEATEN] += behind + (week % 2)  # level, or one better on odd weeks


def _goals(rng: random.Random, finishing: float) -> int:
    """Goals in one match: a few chances, each scored with the player's finishing."""
    return sum(rng.random() < finishing for _ in range(3))


def _assists(rng: random.Random) -> int:
    return sum(rng.random() < 0.25 for _ in range(2))


def _result(scored: int, conceded: int) -> str:
    return "W" if scored > conceded else "D" if scored == conceded else "L"


def _first_monday_of_september(year: int) -> date:
    day = date(year, 9, 1)
    return day + timedelta(days=(7 - day.weekday()) % 7)


async def load_demo(conn: psycopg.AsyncConnection[Any], size: DemoSize) -> dict[str, Any]:
    """Replace the league with the demo league and compute its statistics; counts."""
    started = time.perf_counter()
    data = generate(size)
    async with conn.transaction():
        await conn.execute(query("demo_clear"))
        async with conn.cursor() as cur:
            for table, columns in (
                ("players", "id, name"), ("seasons", "id, name, starts_on, weeks"),
                ("matches", "id, season_id, week, played_on, status, goals_a, goals_b"),
                ("appearances", "match_id, player_id, team, goals, assists, clean_sheet, result"),
            ):  # fmt: skip
                async with cur.copy(f"COPY league.{table} ({columns}) FROM STDIN") as copy:
                    for row in data[table]:
                        await copy.write_row(row)
        statistics = await refresh_all(conn)
    return {
        **{name: len(rows) for name, rows in data.items()},
        "statistics_changed": sum(statistics.values()),
        "seconds": round(time.perf_counter() - started, 2),
    }
