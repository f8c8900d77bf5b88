"""/api/stats by_type health: success rate, last success and failure streak, read from both
the hourly rollup and the not yet compacted minutes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.http.conftest import Server

ROW = ("INSERT INTO nightcrew.{table} ({bucket}, type, user_id, {extra} completed, failed) "
       "VALUES ({at}, %s, %s, {shard} %s, %s)")  # fmt: skip
HOURS_AGO = "date_trunc('hour', now()) - make_interval(hours => %s)"
# A minute after the current one: stats_compact (run by the route) folds only closed minutes,
# so this row stays a minute row whenever the request lands.
NEXT_MINUTE = "date_trunc('minute', now()) + interval '1 minute'"


def hour_row(srv: Server, hours_ago: int, type: str, user: str, ok: int, bad: int) -> None:
    sql = ROW.format(table="stats_hour", bucket="hour", extra="", at=HOURS_AGO, shard="")
    srv.sql(sql, (hours_ago, type, user, ok, bad))


def minute_row(srv: Server, shard: int, type: str, user: str, ok: int, bad: int) -> None:
    sql = ROW.format(table="stats_minute", bucket="minute", extra="shard,", at=NEXT_MINUTE,
                     shard="%s,")  # fmt: skip
    srv.sql(sql, (type, user, shard, ok, bad))


def by_type(srv: Server, who: str) -> dict[str, Any]:
    with srv.client(who) as client:
        response = client.get("/api/stats")
    assert response.status_code == 200, response.text
    return {row["type"]: row for row in response.json()["by_type"]}


def test_health_figures_span_hours_and_minutes(srv: Server) -> None:
    srv.sql("TRUNCATE nightcrew.stats_hour")
    hour_row(srv, 3, "demo.echo", "alice", ok=3, bad=1)  # last success: this hour
    hour_row(srv, 2, "demo.echo", "alice", ok=0, bad=2)
    minute_row(srv, 0, "demo.echo", "alice", ok=0, bad=1)
    hour_row(srv, 1, "demo.fail", "alice", ok=0, bad=4)  # never succeeded in the window
    hour_row(srv, 30, "demo.fail", "alice", ok=9, bad=0)  # outside the 24 h window
    hour_row(srv, 1, "demo.echo", "bob", ok=5, bad=0)  # bob's: not alice's figures
    [(three_hours_ago,)] = srv.sql(f"SELECT {HOURS_AGO}", (3,))

    alice = by_type(srv, "alice")
    echo = alice["demo.echo"]
    assert (echo["completed"], echo["failed"], echo["total"]) == (3, 4, 7)
    assert echo["success_rate"] == 3 / 7
    assert datetime.fromisoformat(echo["last_success_at"]) == three_hours_ago
    assert echo["failure_streak"] == 3  # 2 in the next hour + 1 in the open minute
    fail = alice["demo.fail"]
    assert (fail["success_rate"], fail["last_success_at"], fail["failure_streak"]) == (0.0, None, 4)

    # A success in the open minute ends the streak, to the minute.
    minute_row(srv, 1, "demo.echo", "alice", ok=1, bad=0)
    echo = by_type(srv, "alice")["demo.echo"]
    [(next_minute,)] = srv.sql(f"SELECT {NEXT_MINUTE}")
    assert echo["failure_streak"] == 0 and echo["success_rate"] == 4 / 8
    assert datetime.fromisoformat(echo["last_success_at"]) == next_minute

    admin = by_type(srv, "admin")["demo.echo"]  # alice's and bob's together
    assert (admin["completed"], admin["failure_streak"]) == (9, 0)
