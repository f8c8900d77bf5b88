"""The server for tests that need pgvector (the workspace application, and ``make demo``
which hosts it): the configured test server when it has the ``vector`` extension, else
the embedded server, which ships it (this machine's PostgreSQL 15 has no pgvector)."""

from __future__ import annotations

import os

import psycopg


def has_pgvector(url: str) -> bool:
    """Whether the server at ``url`` offers the ``vector`` extension."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            return found is not None
    except psycopg.Error:
        return False


def pgvector_server_url() -> str:
    """A maintenance-database URL of a server with pgvector."""
    url = os.environ.get("NIGHTCREW_TEST_DATABASE_URL")
    if url and has_pgvector(url):
        return url
    from nightcrew.db import embedded

    return embedded.start()
