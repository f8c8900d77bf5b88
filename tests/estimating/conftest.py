"""Estimating fixtures: the module's test database with the estimating schema migrated,
and an estimating App on it with short leases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from estimating.app import build_app
from nightcrew import App
from nightcrew.db.migrate import migrate

FAST = {
    "migrate_on_start": False, "lease_seconds": 2, "heartbeat_seconds": 0.5,
    "poll_seconds": 0.2, "rescue_seconds": 0.5, "shutdown_grace_seconds": 5,
}  # fmt: skip


@pytest.fixture(scope="module")
def est_db(db_url: str) -> str:
    """The module's database with the estimating migrations applied."""
    migrate(db_url, package="estimating", schema="estimating")
    return db_url


@pytest.fixture
def est_clean(est_db: str) -> str:
    """The estimating tables and the job queue emptied before the test."""
    with psycopg.connect(est_db, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname = 'estimating' AND tablename <> 'migrations'"
            )
        ]
        conn.execute(
            f"TRUNCATE {', '.join(tables)}, nightcrew.jobs, nightcrew.workers"
            " RESTART IDENTITY CASCADE"
        )
    return est_db


@pytest.fixture
async def est_app(est_clean: str) -> AsyncIterator[App]:
    """An estimating App on the clean database."""
    instance = build_app(est_clean, **FAST)
    yield instance
    await instance.aclose()


@pytest.fixture
async def conn(est_app: App) -> AsyncIterator[psycopg.AsyncConnection[object]]:
    """An autocommit connection of the App's pool."""
    pool = await est_app.apool()
    async with pool.connection() as connection:
        yield connection


@pytest.fixture
def sync_url(est_clean: str) -> Iterator[str]:
    """The clean database's URL (for synchronous checks)."""
    yield est_clean
