"""Migration 0020 moves the rules of a job row from CHECK constraints to domains without
rewriting nightcrew.jobs: every job is kept as it was, keyed and waiting jobs stay
findable through their rebuilt partial indexes, and the rules hold from the next
statement on."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from nightcrew.db.migrate import migrate
from tests.conftest import database_before, drop_database

DOMAINS = 20
ROWS = (
    "SELECT id, type, queue, status::text, attempts, max_attempts, timeout_seconds, progress,"
    " pending_parents, dedupe_key, dedupe_scope, on_parent_failure"
    " FROM nightcrew.jobs ORDER BY id"
)


@pytest.fixture
def before_domains(server_url: str) -> Iterator[str]:
    """A database migrated up to 0019, with jobs in several states."""
    url = database_before(server_url, "nc_row_domains_migration", DOMAINS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO nightcrew.jobs (id, type, queue, status, attempts, max_attempts,"
            " timeout_seconds, progress, dedupe_key, dedupe_scope)"
            " SELECT gen_random_uuid(), 'report', 'q' || (i % 3),"
            " (ARRAY['pending', 'processing', 'completed'])[1 + i % 3]::nightcrew.job_status,"
            " i % 3, 5, 30, i % 101, 'key-' || i, (ARRAY['active', 'queued'])[1 + i % 2]"
            " FROM generate_series(1, 300) AS i"
        )
    yield url
    drop_database(server_url, url)


def _filenode(conn: psycopg.Connection[tuple[object, ...]]) -> object:
    row = conn.execute("SELECT pg_relation_filenode('nightcrew.jobs')").fetchone()
    assert row is not None
    return row[0]


def test_upgrade_keeps_every_job_without_rewriting_the_table(before_domains: str) -> None:
    with psycopg.connect(before_domains, autocommit=True) as conn:
        before, filenode = conn.execute(ROWS).fetchall(), _filenode(conn)
    assert migrate(before_domains)[0] == DOMAINS
    with psycopg.connect(before_domains, autocommit=True) as conn:
        assert conn.execute(ROWS).fetchall() == before
        assert _filenode(conn) == filenode  # relabelled, not rewritten
        # The rebuilt dedupe index still holds the live keyed jobs: a second job of a live
        # 'active' key is refused, as before the upgrade.
        live = conn.execute(
            "SELECT dedupe_key FROM nightcrew.jobs WHERE dedupe_scope = 'active'"
            " AND status = 'pending' LIMIT 1"
        ).fetchone()
        assert live is not None
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO nightcrew.jobs (id, type, dedupe_key) VALUES"
                " (gen_random_uuid(), 'report', %s)",
                live,
            )
        with pytest.raises(psycopg.errors.CheckViolation, match="jobs_queue_check"):
            conn.execute(
                "INSERT INTO nightcrew.jobs (id, type, queue) VALUES (gen_random_uuid(), 'r', '')"
            )
        with pytest.raises(psycopg.errors.CheckViolation, match="jobs_attempts_check"):
            conn.execute("UPDATE nightcrew.jobs SET attempts = attempts - 10")
