"""Versioned schema migrations: ``sql/migrations/NNNN_name.sql``, tracked in
``nightcrew.migrations``, applied in order, each in its own transaction.

A migration whose first line is ``-- nightcrew: no-transaction`` runs outside a transaction
instead, one statement at a time, so it can ``CREATE INDEX CONCURRENTLY`` on a large table
without blocking its writers. Its statements end with ``;`` at the end of a line and may not
use dollar quoting (no function bodies: those belong in a transactional migration). It is
recorded as applied only after its last statement, so an interrupted one runs again from the
top: write each step to be re-runnable (``DROP INDEX CONCURRENTLY IF EXISTS`` the index
being built first, since a failed concurrent build leaves an invalid index behind).

Applications built on nightcrew ship their own migration set the same way: files in
``<package>/sql/migrations/`` tracked in ``<schema>.migrations`` (``migrate(url,
package="estimating", schema="estimating")``, or ``App.add_migrations``).

Several processes may call :func:`migrate` at once (every ``App`` does on start): a session
advisory lock serialises them, and the second finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from nightcrew.errors import MigrationError

# Arbitrary constant key for pg_advisory_lock: "nightcrw" as ASCII.
MIGRATION_LOCK_KEY = 0x6E69676874637277 & 0x7FFF_FFFF_FFFF_FFFF

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
NO_TRANSACTION_MARKER = "-- nightcrew: no-transaction"
# A statement of a no-transaction migration ends with ";" at the end of a line.
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def transactional(self) -> bool:
        """False for a migration marked to run outside a transaction (module docstring)."""
        first_line = self.sql.lstrip().split("\n", 1)[0].strip()
        return first_line != NO_TRANSACTION_MARKER

    def statements(self) -> list[str]:
        """A no-transaction migration's statements, in order (comment-only parts dropped).

        PostgreSQL runs a multi-statement query string as one implicit transaction, in which
        ``CREATE INDEX CONCURRENTLY`` is refused: hence one statement per round trip.
        """
        if "$" in self.sql:
            raise MigrationError(
                f"migration {self.version:04d}_{self.name} runs outside a transaction and may "
                f"not use dollar quoting (its statements are split at a ';' ending a line)"
            )
        parts = (part.strip() for part in _STATEMENT_END.split(self.sql))
        return [part for part in parts if part and not _only_comments(part)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def available_migrations(package: str = "nightcrew") -> list[Migration]:
    """The migrations shipped with ``package`` (default: nightcrew's own), in order."""
    folder = resources.files(package) / "sql" / "migrations"
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


def applied_versions(conn: psycopg.Connection[Any], schema: str = "nightcrew") -> list[int]:
    """Versions already applied to the database behind ``conn`` (empty when none)."""
    table = sql.Identifier(schema, "migrations")
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table.as_string(conn),)).fetchone()
    if not exists or not exists[0]:
        return []
    return [
        row[0] for row in conn.execute(sql.SQL("SELECT version FROM {} ORDER BY 1").format(table))
    ]


def migrate(url: str, *, package: str = "nightcrew", schema: str = "nightcrew") -> list[int]:
    """Apply every pending migration to the database at ``url``; return the versions applied.

    ``package``/``schema`` select another migration set (an application's own, see the
    module docstring). Raises :class:`MigrationError` when the database is newer than
    this code.
    """
    migrations = available_migrations(package)
    table = sql.Identifier(schema, "migrations")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = 0")
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute("SET client_min_messages = warning")
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                ).format(table)
            )
            done = set(applied_versions(conn, schema))
            newest_known = migrations[-1].version if migrations else 0
            if done and max(done) > newest_known:
                raise MigrationError(
                    f"database schema {schema!r} is at version {max(done)}, newer than this "
                    f"{package} ({newest_known}); upgrade {package}"
                )
            applied = []
            for migration in migrations:
                if migration.version in done:
                    continue
                _apply(conn, migration, table)
                applied.append(migration.version)
            return applied
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))


def _apply(conn: psycopg.Connection[Any], migration: Migration, table: sql.Identifier) -> None:
    """Run one migration and record it (in the same transaction when it is transactional)."""
    record = sql.SQL("INSERT INTO {} (version, name) VALUES (%s, %s)").format(table)
    if migration.transactional:
        with conn.transaction():
            conn.execute(migration.sql.encode())
            conn.execute(record, (migration.version, migration.name))
        return
    for statement in migration.statements():  # autocommit: each statement on its own
        conn.execute(statement.encode())
    conn.execute(record, (migration.version, migration.name))


def pending_versions(url: str) -> list[int]:
    """Versions shipped with this code but not yet applied at ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        done = set(applied_versions(conn))
    return [m.version for m in available_migrations() if m.version not in done]
