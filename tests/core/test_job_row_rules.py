"""The rules every row of nightcrew.jobs keeps, whoever writes it: the owner's paths and
the API role (the HTTP layer, RLS users), which may INSERT and UPDATE its own rows
directly. Each of the nine rules (domains of the columns since migration 0020, under the
constraint names the table's CHECKs had) must refuse a bad value, and a NULL must pass where
the column allows it."""

from __future__ import annotations

import psycopg
import pytest

INSERT = (
    "INSERT INTO nightcrew.jobs (id, type, queue, user_id) VALUES (gen_random_uuid(), %s, %s, %s)"
    " RETURNING id"
)

CHECK = r"jobs_\w+_check"  # the constraint named in the error

# (column, a value each rule refuses, a value it accepts)
RULES = [
    ("type", "''", "'t.ok'"),
    ("queue", "''", "'q'"),
    ("attempts", "-1", "0"),
    ("max_attempts", "0", "1"),
    ("pending_parents", "-1", "0"),
    ("timeout_seconds", "0", "0.5"),
    ("progress", "-0.5", "0"),
    ("progress", "100.5", "100"),
    ("dedupe_scope", "'later'", "'queued'"),
    ("on_parent_failure", "'ignore'", "'run'"),
]


def _insert(conn: psycopg.Connection[tuple[object, ...]], user: str) -> object:
    row = conn.execute(INSERT, ("t.ok", "q", user)).fetchone()
    assert row is not None
    return row[0]


def _as_api_user(conn: psycopg.Connection[tuple[object, ...]], user: str) -> None:
    conn.execute("SELECT set_config('nightcrew.user_id', %s, true)", (user,))
    conn.execute("SET LOCAL ROLE nightcrew_api")


@pytest.mark.parametrize("api", [False, True], ids=["owner", "api_role"])
@pytest.mark.parametrize(("column", "bad", "good"), RULES)
def test_each_rule_refuses_a_bad_value_on_update(
    clean_db: str, api: bool, column: str, bad: str, good: str
) -> None:
    with psycopg.connect(clean_db) as conn:
        if api:
            _as_api_user(conn, "alice")
        job_id = _insert(conn, "alice")
        conn.execute(f"UPDATE nightcrew.jobs SET {column} = {good} WHERE id = %s", (job_id,))
        with pytest.raises(psycopg.errors.CheckViolation, match=CHECK):
            conn.execute(f"UPDATE nightcrew.jobs SET {column} = {bad} WHERE id = %s", (job_id,))


@pytest.mark.parametrize(("column", "bad", "good"), RULES)
def test_each_rule_refuses_a_bad_value_on_insert_by_the_api_role(
    clean_db: str, column: str, bad: str, good: str
) -> None:
    others = {"type": "'t.ok'", "queue": "'q'", "user_id": "'alice'"}
    for value, refused in ((good, False), (bad, True)):
        columns = {**others, column: value}
        statement = (
            f"INSERT INTO nightcrew.jobs (id, {', '.join(columns)})"
            f" VALUES (gen_random_uuid(), {', '.join(columns.values())})"
        )
        with psycopg.connect(clean_db) as conn:
            _as_api_user(conn, "alice")
            if refused:
                with pytest.raises(psycopg.errors.CheckViolation, match=CHECK):
                    conn.execute(statement)
            else:
                conn.execute(statement)


def test_nulls_pass_where_the_columns_allow_them(clean_db: str) -> None:
    with psycopg.connect(clean_db) as conn:
        job_id = _insert(conn, "alice")
        conn.execute(
            "UPDATE nightcrew.jobs SET timeout_seconds = NULL, on_parent_failure = NULL"
            " WHERE id = %s",
            (job_id,),
        )
        row = conn.execute(
            "SELECT timeout_seconds, on_parent_failure FROM nightcrew.jobs WHERE id = %s",
            (job_id,),
        ).fetchone()
    assert row == (None, None)


def test_a_writers_own_operators_do_not_stand_in_for_the_rules(clean_db: str) -> None:
    """An operator of the writer's schema, searched before pg_catalog, must not change what
    the rules accept (a CHECK's operators are bound when it is created, not per writer)."""
    with psycopg.connect(clean_db) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS mine")
        conn.execute(
            "CREATE FUNCTION mine.always(text, text) RETURNS boolean LANGUAGE sql"
            " IMMUTABLE AS 'SELECT true'"
        )
        conn.execute(
            "CREATE OPERATOR mine.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = mine.always)"
        )
        conn.execute("SET LOCAL search_path = mine, pg_catalog, public")
        with pytest.raises(psycopg.errors.CheckViolation, match=CHECK):
            conn.execute(INSERT, ("", "q", None))


def test_copy_keeps_the_rules(clean_db: str) -> None:
    """Bulk enqueue writes with COPY: a bad value in a copied row is refused too."""
    statement = "COPY nightcrew.jobs (id, type, queue) FROM STDIN"
    with (
        psycopg.connect(clean_db) as conn,
        pytest.raises(psycopg.errors.CheckViolation, match="jobs_queue_check"),
        conn.cursor().copy(statement) as copy,
    ):
        copy.write_row(("0190a0a0-0000-7000-8000-000000000001", "t.ok", ""))
