"""The demo league: its size, its stories, and ``python -m league.demo`` loading it alone."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest

from league.demo_data import DemoSize, load_demo
from tests.league.helpers import rows
from tests.procs import REPO_ROOT

pytestmark = pytest.mark.timeout(60)


async def test_the_demo_league_and_its_stories(conn: psycopg.AsyncConnection[Any]) -> None:
    counts = await load_demo(conn, DemoSize())
    assert (counts["players"], counts["seasons"], counts["matches"]) == (40, 10, 400)
    weeks = await rows(
        conn, "SELECT count(DISTINCT (season_id, week)), count(*) FROM league.matches"
    )
    assert weeks == [(400, 400)]  # a match a week
    top_scorer = await rows(
        conn,
        "SELECT p.name FROM league.hall_of_fame h JOIN league.players p ON p.id = h.player_id"
        " WHERE category = 'goals' AND rank = 1",
    )
    assert top_scorer == [("Dara Okafor",)]
    unbeaten = await rows(
        conn,
        "SELECT p.name, b.longest_unbeaten_streak FROM"
        " league.personal_bests b JOIN league.players p ON p.id ="
        " b.player_id ORDER BY 2 DESC LIMIT 2",
    )
    assert unbeaten[0][0] == "Sam Reyes" and unbeaten[0][1] >= 60 > unbeaten[1][1]
    scheduled = await rows(conn, "SELECT count(*) FROM league.matches WHERE status = 'scheduled'")
    assert scheduled == [(28,)]


def test_python_m_league_demo_loads_it_alone(league_clean: str) -> None:
    env = {"NIGHTCREW_DATABASE_URL": league_clean, "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "league.demo", "--small"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "league: 40 players, 3 seasons" in done.stdout
    with psycopg.connect(league_clean) as sync:
        assert sync.execute("SELECT count(*) FROM league.all_time_stats").fetchone() == (40,)


def test_make_demo_hosts_the_league() -> None:
    from nightcrew_apps import build_app

    app = build_app("postgresql://nobody@127.0.0.1:1/never_connected")
    assert "league" in app.applications and ("league", "league") in app.migration_sets
    assert any(page.path == "/league" for page in app.dashboard_pages)
