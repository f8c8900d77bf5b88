"""Which database to use: the configured URL, else the embedded server."""

from __future__ import annotations

import os


def resolve_database_url(configured: str | None = None) -> str:
    """Return ``configured``, else ``NIGHTCREW_DATABASE_URL``/``DATABASE_URL``, else start the
    embedded PostgreSQL server and return its URL."""
    url = configured or os.environ.get("NIGHTCREW_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    from nightcrew.db import embedded

    return embedded.start()
