"""Migrations: exactly the expected schema, idempotent, safe when run concurrently; the
fetch query's plan uses its index."""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from nightcrew.db.migrate import applied_versions, available_migrations, migrate
from nightcrew.lifecycle.fetch import FETCH_SESSION_SETTINGS
from nightcrew.queries import query
from tests.conftest import create_database, drop_database

SNAPSHOT = Path(__file__).with_name("schema_snapshot.txt")

DESCRIBE = """
SELECT 'column ' || c.table_name || '.' || c.column_name || ' ' || c.data_type
       || CASE WHEN c.data_type = 'USER-DEFINED' THEN ':' || c.udt_name ELSE '' END
       || CASE WHEN c.is_nullable = 'NO' THEN ' not null' ELSE '' END
       || coalesce(' default ' || c.column_default, '')
       || coalesce(' domain ' || c.domain_schema || '.' || c.domain_name, '')
FROM information_schema.columns c WHERE c.table_schema = 'nightcrew'
UNION ALL
SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'nightcrew'
UNION ALL
SELECT 'constraint '
       || CASE WHEN conrelid <> 0 THEN conrelid::regclass::text ELSE contypid::regtype::text END
       || ' ' || conname || ' '
       || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'nightcrew'::regnamespace AND contype <> 'n'
UNION ALL
SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
WHERE t.typnamespace = 'nightcrew'::regnamespace GROUP BY t.typname
UNION ALL
SELECT 'function ' || p.proname FROM pg_proc p WHERE p.pronamespace = 'nightcrew'::regnamespace
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || ' ' || tgname FROM pg_trigger
WHERE NOT tgisinternal AND tgrelid::regclass::text LIKE 'nightcrew.%%'
UNION ALL
SELECT 'policy ' || tablename || ' ' || policyname FROM pg_policies
WHERE schemaname = 'nightcrew'
ORDER BY 1
"""


def describe(url: str) -> str:
    with psycopg.connect(url) as conn:
        return "\n".join(row[0] for row in conn.execute(DESCRIBE)) + "\n"


def test_migrations_produce_exactly_the_expected_schema(db_url: str) -> None:
    actual = describe(db_url)
    if os.environ.get("NIGHTCREW_UPDATE_SCHEMA_SNAPSHOT") == "1":
        SNAPSHOT.write_text(actual)
    assert actual == SNAPSHOT.read_text(), (
        "schema differs from tests/core/schema_snapshot.txt; if the change is intended, "
        "rerun with NIGHTCREW_UPDATE_SCHEMA_SNAPSHOT=1"
    )


def test_migrations_are_numbered_and_all_applied(db_url: str) -> None:
    shipped = [m.version for m in available_migrations()]
    assert shipped == list(range(1, len(shipped) + 1))
    with psycopg.connect(db_url) as conn:
        assert applied_versions(conn) == shipped
    assert migrate(db_url) == []


def test_concurrent_migrations_apply_each_version_once(server_url: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS nightcrew_empty_tpl")
        conn.execute("CREATE DATABASE nightcrew_empty_tpl")
    url = create_database(server_url, "nightcrew_empty_tpl", "concurrent_migrate")
    try:
        results: list[list[int]] = []
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def run() -> None:
            barrier.wait()
            try:
                results.append(migrate(url))
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        shipped = [m.version for m in available_migrations()]
        assert sorted(v for r in results for v in r) == shipped  # each applied exactly once
        with psycopg.connect(url) as conn:
            assert applied_versions(conn) == shipped
    finally:
        drop_database(server_url, url)
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS nightcrew_empty_tpl")


def _plan_nodes(plan: dict[str, object]) -> list[dict[str, object]]:
    nodes = [plan]
    for child in plan.get("Plans", []):  # type: ignore[union-attr]
        nodes.extend(_plan_nodes(child))
    return nodes


FETCH_PARAMS = {
    "queues": ["a", "b"],
    "limit": 10,
    "worker_id": "w",
    "lease_seconds": 30,
    "exclude": [],
    "now": None,
}


def _fetch_plans(conn: psycopg.Connection[object]) -> tuple[dict[str, object], ...]:
    """EXPLAIN (no execution, nothing leased) of fetch_jobs: the custom plan planned with
    the values, and the generic plan a worker's fetch connection prepares once."""
    text = query("fetch_jobs").as_string(conn)
    row = conn.execute(f"EXPLAIN (FORMAT JSON) {text}", FETCH_PARAMS).fetchone()
    assert row is not None
    # The same statement as a server-side prepared one, with psycopg's parameter order.
    order = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", text)))
    numbered = re.sub(r"%\((\w+)\)s", lambda m: f"${order.index(m[1]) + 1}", text)
    for name, value in FETCH_SESSION_SETTINGS:
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))
    conn.execute(f"PREPARE fetch_generic AS {numbered}")
    args = sql.SQL(", ").join(sql.Literal(FETCH_PARAMS[name]) for name in order)
    generic = conn.execute(
        sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE fetch_generic ({})").format(args)
    ).fetchone()
    conn.execute("DEALLOCATE fetch_generic")
    conn.execute("RESET ALL")
    assert generic is not None
    return _plan_json(row[0]), _plan_json(generic[0])


def _plan_json(value: object) -> dict[str, object]:
    plan = value if isinstance(value, list) else json.loads(str(value))
    return plan[0]["Plan"]  # type: ignore[no-any-return]


def _assert_uses_fetch_index(plan: dict[str, object], *, seq_scan_allowed: bool = False) -> None:
    nodes = _plan_nodes(plan)
    scans = {(n.get("Node Type"), n.get("Index Name")) for n in nodes}
    assert ("Index Scan", "jobs_fetch_idx") in scans, scans
    assert seq_scan_allowed or not any(
        n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == "jobs" for n in nodes
    ), scans


def test_fetch_query_uses_the_partial_fetch_index(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        # Never analyzed and empty: a worker may prepare its generic plan right then, and
        # keeps it. (A custom plan may scan a table this small; it is made again next call.)
        custom, generic = _fetch_plans(conn)
        _assert_uses_fetch_index(custom, seq_scan_allowed=True)
        _assert_uses_fetch_index(generic)
        conn.execute(
            "INSERT INTO nightcrew.jobs (id, type, queue, status, priority)"
            " SELECT gen_random_uuid(), 't', CASE WHEN i % 3 = 0 THEN 'a' ELSE 'b' END,"
            " CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'completed' END::nightcrew.job_status,"
            " i % 5 FROM generate_series(1, 20000) i"
        )
        conn.execute("ANALYZE nightcrew.jobs")
        for plan in _fetch_plans(conn):
            _assert_uses_fetch_index(plan)


@pytest.mark.parametrize("name", ["fetch_jobs", "finish_jobs", "insert_job", "rescue_jobs"])
def test_named_queries_load(name: str) -> None:
    assert len(query(name).as_string(None)) > 20


_BY_KEY_QUERIES: dict[str, dict[str, object]] = {
    "limit_set": {"key": "k42", "count": 1, "seconds": 1.0, "concurrency": None, "by": "op"},
    "limit_clear": {"key": "k42"},
    "retention_limits": {"after": "", "limit": 1000, "before": "2100-01-01"},
}


@pytest.mark.parametrize("name", sorted(_BY_KEY_QUERIES))
def test_limit_reservations_are_found_by_key_through_an_index(clean_db: str, name: str) -> None:
    """set_limit / clear_limit and the limits' retention look reservations up by key: with many
    keys that must be an index lookup, not a scan of every reserved slot (migration 0019)."""
    with psycopg.connect(clean_db) as conn:  # one transaction, rolled back: nothing kept
        conn.execute(
            "INSERT INTO nightcrew.limits (key) SELECT 'k' || g FROM generate_series(1, 5000) g"
        )
        conn.execute(
            "INSERT INTO nightcrew.limit_reservations (job_id, key, slot_at)"
            " SELECT gen_random_uuid(), 'k' || (g % 5000), now()"
            " FROM generate_series(1, 50000) g"
        )
        conn.execute("ANALYZE nightcrew.limits, nightcrew.limit_reservations")
        text = query(name).as_string(conn)
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {text}", _BY_KEY_QUERIES[name]).fetchone()
        conn.rollback()
    assert row is not None
    nodes = _plan_nodes(_plan_json(row[0]))
    scans = {(n.get("Node Type"), n.get("Relation Name"), n.get("Index Name")) for n in nodes}
    assert not any(
        n.get("Node Type") == "Seq Scan" and n.get("Relation Name") == "limit_reservations"
        for n in nodes
    ), scans
    assert any(n.get("Index Name") == "limit_reservations_key_idx" for n in nodes), scans
