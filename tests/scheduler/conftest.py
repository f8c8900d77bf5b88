"""Fixtures of the scheduler tests: an App on a clean database (schedules included)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from nightcrew import App


def truncate(db_url: str) -> None:
    """Empty the queue, the archive and the schedules."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE nightcrew.jobs, nightcrew.workers, nightcrew.schedules,"
            " nightcrew.jobs_history"
        )


@pytest.fixture
def sched_db(db_url: str) -> str:
    """The module's database, emptied before the test."""
    truncate(db_url)
    return db_url


def make_app(url: str, **settings: Any) -> App:
    """An App for scheduler tests: maintenance off unless asked, short leases."""
    options: dict[str, Any] = {
        "migrate_on_start": False, "maintenance_schedules": False, "lease_seconds": 3,
        "heartbeat_seconds": 0.5, "poll_seconds": 0.2, "rescue_seconds": 0.5,
    }  # fmt: skip
    options.update(settings)
    return App(url, **options)


@pytest.fixture
async def sapp(sched_db: str) -> AsyncIterator[App]:
    """An App on the clean database with a no-op job type ``t.noop``."""
    app = make_app(sched_db)

    @app.job("t.noop")
    async def noop(ctx: Any, payload: Any) -> None:
        return None

    yield app
    await app.aclose()


@pytest.fixture
def db_conn(sched_db: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test database, for assertions."""
    with psycopg.connect(sched_db, autocommit=True) as conn:
        yield conn


def utc(*args: int) -> datetime:
    """A UTC datetime."""
    return datetime(*args, tzinfo=UTC)  # type: ignore[arg-type,misc]
