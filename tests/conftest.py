"""Test databases: one migrated template per session, cloned per test module.

``NIGHTCREW_TEST_DATABASE_URL`` points at a server to use (CI: the local PostgreSQL);
without it the embedded server is started.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nightcrew import App
from nightcrew.db.migrate import available_migrations, migrate


def _server_url() -> str:
    url = os.environ.get("NIGHTCREW_TEST_DATABASE_URL")
    if url:
        return url
    from nightcrew.db import embedded

    return embedded.start()


def with_dbname(url: str, dbname: str) -> str:
    """The same server, another database."""
    return make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL of the test server's maintenance database."""
    return _server_url()


@pytest.fixture(scope="session")
def template_db(server_url: str) -> Iterator[str]:
    """A migrated database used as the template of every test database."""
    name = f"nightcrew_tpl_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(with_dbname(server_url, name))
    yield name
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(server_url: str, template: str, label: str) -> str:
    """Clone the template into a fresh database; return its URL."""
    name = f"nc_{re.sub(r'[^a-z0-9]+', '_', label.lower())[-30:]}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return with_dbname(server_url, name)


def drop_database(server_url: str, url: str) -> None:
    """Drop a database made by :func:`create_database`."""
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_before(server_url: str, name: str, version: int) -> str:
    """A fresh database ``name`` migrated up to, not including, migration ``version``:
    where an upgrade across that migration starts. Dropped with :func:`drop_database`."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(server_url, name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA nightcrew")
        conn.execute(
            "CREATE TABLE nightcrew.migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in available_migrations():
            if m.version < version:
                for statement in [m.sql] if m.transactional else m.statements():
                    conn.execute(statement.encode())
                conn.execute("INSERT INTO nightcrew.migrations (version, name) VALUES (%s, %s)",
                             (m.version, m.name))  # fmt: skip
    return url


@pytest.fixture(scope="module")
def db_url(request: pytest.FixtureRequest, server_url: str, template_db: str) -> Iterator[str]:
    """A migrated database of this test module's own."""
    url = create_database(server_url, template_db, request.module.__name__)
    yield url
    drop_database(server_url, url)


@pytest.fixture
def clean_db(db_url: str) -> str:
    """The module's database with the queue emptied before the test."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs, nightcrew.workers")
    return db_url


@pytest.fixture
def app(clean_db: str) -> Iterator[App]:
    """An App on the clean test database, with short leases for fast fault tests."""
    instance = App(
        clean_db,
        migrate_on_start=False,
        lease_seconds=3,
        heartbeat_seconds=0.5,
        poll_seconds=0.2,
        rescue_seconds=0.5,
        shutdown_grace_seconds=5,
    )
    yield instance
    instance.close()


@pytest.fixture
async def aapp(app: App) -> AsyncIterator[App]:
    """The same App, with its async pool closed after the test."""
    yield app
    await app.aclose()


@pytest.fixture
def demo_db() -> Iterator[str]:
    """An empty database (``make demo`` migrates it) on a server with pgvector, which the
    workspace application needs: the configured test server may lack it."""
    from tests.pgvector import pgvector_server_url

    server = pgvector_server_url()
    url = create_database(server, "template0", "make_demo")
    yield url
    drop_database(server, url)
