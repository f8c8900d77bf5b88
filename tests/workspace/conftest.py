"""Workspace fixtures. The workspace needs pgvector: its tests run on the configured test
server when ``CREATE EXTENSION vector`` works there, else on the embedded server (which
ships pgvector), from a template database of their own (nightcrew and workspace
migrated), cloned per module."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from nightcrew import App, create_api_key
from nightcrew.db.migrate import migrate
from tests.conftest import create_database, drop_database, with_dbname
from tests.pgvector import pgvector_server_url
from workspace.app import install
from workspace.embedding import LocalMiniLM

FAST = {
    "migrate_on_start": False,
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "poll_seconds": 0.2,
    "rescue_seconds": 0.5,
    "shutdown_grace_seconds": 5,
}

_MODEL = LocalMiniLM()
"""One loaded model for the whole session (the worker's and the search's)."""


@pytest.fixture(scope="session")
def ws_server_url() -> str:
    """A server with pgvector: the configured test server if it has it, else embedded."""
    return pgvector_server_url()


@pytest.fixture(scope="session")
def ws_template(ws_server_url: str) -> Iterator[str]:
    """A database with nightcrew's and the workspace's migrations, to clone."""
    name = f"workspace_tpl_{os.getpid()}"
    with psycopg.connect(ws_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(ws_server_url, name)
    migrate(url)
    migrate(url, package="workspace", schema="workspace")
    recorder = build_ws_app(url)
    recorder.sync_job_types()  # the triggers' nightcrew.enqueue() needs the types recorded
    recorder.close()
    yield name
    with psycopg.connect(ws_server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def ws_db(request: pytest.FixtureRequest, ws_server_url: str, ws_template: str) -> Iterator[str]:
    """The module's own migrated database."""
    url = create_database(ws_server_url, ws_template, request.module.__name__)
    yield url
    drop_database(ws_server_url, url)


@pytest.fixture
def ws_clean(ws_db: str) -> str:
    """The workspace tables and the job queue emptied before the test."""
    with psycopg.connect(ws_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE workspace.documents, workspace.embedding_model, workspace.sheets,"
            " nightcrew.jobs, nightcrew.workers RESTART IDENTITY CASCADE"
        )
    return ws_db


def build_ws_app(url: str) -> App:
    """A workspace App on ``url`` with short leases and the session's model."""
    target = App(url, **FAST)
    install(target, embedder=_MODEL)
    return target


@pytest.fixture
async def ws_app(ws_clean: str) -> AsyncIterator[App]:
    """A workspace App on the clean database."""
    target = build_ws_app(ws_clean)
    yield target
    await target.aclose()


@pytest.fixture
def keys(ws_clean: str) -> dict[str, str]:
    """API keys of alice and bob (plain users)."""
    with psycopg.connect(ws_clean, autocommit=True) as conn:
        return {user: create_api_key(conn, user)[1] for user in ("alice", "bob")}
