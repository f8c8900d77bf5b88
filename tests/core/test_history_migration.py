"""Migration 0013 turns nightcrew.jobs_history into a table partitioned by month and keeps
every archived row, readable as before."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from nightcrew.db.migrate import migrate
from tests.conftest import database_before, drop_database

PARTITIONED = 13


@pytest.fixture
def before_partitioning(server_url: str) -> Iterator[str]:
    """A database migrated up to 0012 only."""
    url = database_before(server_url, "nc_history_migration", PARTITIONED)
    yield url
    drop_database(server_url, url)


def test_archived_rows_move_into_month_partitions(before_partitioning: str) -> None:
    with psycopg.connect(before_partitioning, autocommit=True) as conn:
        for months_ago, user in ((14, "alice"), (2, "bob"), (0, "alice")):
            conn.execute(
                "INSERT INTO nightcrew.jobs_history (id, type, queue, status, created_at,"
                " archived_at, job) VALUES (gen_random_uuid(), %s, 'q', 'completed', now(),"
                " now() - make_interval(months => %s), jsonb_build_object('user_id', %s::text))",
                (f"t{months_ago}", months_ago, user))  # fmt: skip
    assert migrate(before_partitioning)[0] == PARTITIONED  # and any later ones
    with psycopg.connect(before_partitioning, autocommit=True) as conn:
        rows = conn.execute("SELECT type, tableoid::regclass::text LIKE"
                            " 'nightcrew_history.jobs_history_____\\___' FROM"
                            " nightcrew.jobs_history ORDER BY type").fetchall()  # fmt: skip
        assert rows == [("t0", True), ("t14", True), ("t2", True)]
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE oid = 'nightcrew.jobs_history'::regclass"
        ).fetchone()
        assert kind == ("p",)
        # Still readable by the API role under row-level security (0010's rule).
        conn.execute("BEGIN")
        conn.execute("SELECT set_config('nightcrew.user_id', 'alice', true)")
        conn.execute("SET LOCAL ROLE nightcrew_api")
        seen = conn.execute("SELECT type FROM nightcrew.jobs_history ORDER BY 1").fetchall()
        conn.execute("ROLLBACK")
        assert seen == [("t0",), ("t14",)]  # alice's, not bob's


def test_the_api_role_cannot_create_or_drop_history_partitions(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for statement in (
            "SELECT nightcrew.history_partition(now())",
            "SELECT nightcrew.drop_history_partition('jobs_history_2020_01')",
        ):
            conn.execute("BEGIN")
            conn.execute("SET LOCAL ROLE nightcrew_api")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.execute("ROLLBACK")
