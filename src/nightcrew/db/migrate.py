"""Versioned schema migrations: ``sql/migrations/NNNN_name.sql``, tracked in
``nightcrew.migrations``, applied in order, each in its own transaction.

Several processes may call :func:`migrate` at once (every ``App`` does on start): a session
advisory lock serialises them, and the second finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from nightcrew.errors import MigrationError

# Arbitrary constant key for pg_advisory_lock: "nightcrw" as ASCII.
MIGRATION_LOCK_KEY = 0x6E69676874637277 & 0x7FFF_FFFF_FFFF_FFFF

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with this version, in order."""
    folder = resources.files("nightcrew") / "sql" / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration numbers are not 1..n without gaps: {versions}")
    return found


def applied_versions(conn: psycopg.Connection[Any]) -> list[int]:
    """Versions already applied to the database behind ``conn`` (empty when none)."""
    exists = conn.execute("SELECT to_regclass('nightcrew.migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM nightcrew.migrations ORDER BY 1")]


def migrate(url: str) -> list[int]:
    """Apply every pending migration to the database at ``url``; return the versions applied.

    Raises :class:`MigrationError` when the database is newer than this code.
    """
    migrations = available_migrations()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = 0")
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute("SET client_min_messages = warning")
            conn.execute("CREATE SCHEMA IF NOT EXISTS nightcrew")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS nightcrew.migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = set(applied_versions(conn))
            newest_known = migrations[-1].version if migrations else 0
            if done and max(done) > newest_known:
                raise MigrationError(
                    f"database schema is at version {max(done)}, newer than this nightcrew "
                    f"({newest_known}); upgrade nightcrew"
                )
            applied = []
            for migration in migrations:
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO nightcrew.migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration.version)
            return applied
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def pending_versions(url: str) -> list[int]:
    """Versions shipped with this code but not yet applied at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        done = set(applied_versions(conn))
    return [m.version for m in available_migrations() if m.version not in done]
