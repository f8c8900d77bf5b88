"""League fixtures: the module's test database with the league schema migrated, a league
App on it (short leases, quick retries), API keys, and a worker running in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

from league.app import install
from nightcrew import App, Worker
from nightcrew.db.migrate import migrate
from nightcrew.keys import create_key

FAST = {
    "migrate_on_start": False,
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "poll_seconds": 0.05,
    "rescue_seconds": 0.5,
    "shutdown_grace_seconds": 5,
    "webhook_secret": "whsec_league_tests",
}
RETRY_BACKOFF = 0.02
"""Seconds before a failed statistics function's first retry, in tests."""


@pytest.fixture(scope="module")
def league_db(db_url: str) -> str:
    """The module's database with the league migrations applied."""
    migrate(db_url, package="league", schema="league")
    return db_url


@pytest.fixture
def league_clean(league_db: str) -> str:
    """The league tables and the job queue emptied before the test."""
    with psycopg.connect(league_db, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname = 'league' AND tablename <> 'migrations'"
            )
        ]
        conn.execute(f"TRUNCATE {', '.join(tables)}, nightcrew.jobs, nightcrew.workers CASCADE")
    return league_db


@pytest.fixture
async def league_app(league_clean: str) -> AsyncIterator[App]:
    """A league App on the clean database."""
    instance = App(league_clean, **FAST)
    install(instance, retry_backoff=RETRY_BACKOFF)
    instance.sync_job_types()
    yield instance
    await instance.aclose()


@pytest.fixture
async def conn(league_app: App) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """An autocommit connection of the App's pool."""
    pool = await league_app.apool()
    async with pool.connection() as connection:
        yield connection


@pytest.fixture
def admin_key(league_clean: str) -> Iterator[str]:
    """An admin API key."""
    with psycopg.connect(league_clean, autocommit=True) as sync:
        _, secret = create_key(sync, "league-admin", admin=True)
    yield secret


@pytest.fixture
def user_key(league_clean: str) -> Iterator[str]:
    """A non-admin API key."""
    with psycopg.connect(league_clean, autocommit=True) as sync:
        _, secret = create_key(sync, "fan")
    yield secret


@pytest.fixture
async def worker(league_app: App) -> AsyncIterator[Worker]:
    """A real worker of the league App running in the background until the test ends."""
    running = league_app.worker(concurrency=12)
    task = asyncio.create_task(running.run())
    await running.wait_listening()
    yield running
    running.stop()
    await asyncio.wait_for(task, 30)
