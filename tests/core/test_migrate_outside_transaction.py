"""Migrations marked ``-- nightcrew: no-transaction`` run statement by statement outside a
transaction: ``CREATE INDEX CONCURRENTLY`` works and does not block the table's writers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nightcrew.db.migrate import NO_TRANSACTION_MARKER, applied_versions, migrate
from nightcrew.errors import MigrationError
from tests.support import wait_until

_TABLE = """\
CREATE TABLE {schema}.items (id bigint PRIMARY KEY, queue text NOT NULL);
INSERT INTO {schema}.items SELECT g, 'q' || (g % 7) FROM generate_series(1, 1000) g;
CREATE INDEX items_queue_idx ON {schema}.items (id);
"""

# The rebuild pattern for an index: build the new one concurrently (after dropping an
# invalid leftover of an interrupted run), drop the old one concurrently, take its name.
_REBUILD = f"""\
{NO_TRANSACTION_MARKER}
-- items_queue_idx had the wrong column: rebuild it without blocking writers.
DROP INDEX CONCURRENTLY IF EXISTS {{schema}}.items_queue_idx_new;
CREATE INDEX CONCURRENTLY items_queue_idx_new ON {{schema}}.items (queue);
DROP INDEX CONCURRENTLY IF EXISTS {{schema}}.items_queue_idx;
ALTER INDEX {{schema}}.items_queue_idx_new RENAME TO items_queue_idx;
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """An importable package of migrations of its own (name, its migrations folder)."""
    name = f"nc_migrations_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name / "sql" / "migrations"
    folder.mkdir(parents=True)
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name, folder


def _write(folder: Path, schema: str, *files: str) -> None:
    for number, text in enumerate(files, start=1):
        (folder / f"{number:04d}_step.sql").write_text(text.format(schema=schema))


def _index_def(url: str, schema: str) -> tuple[str, bool]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i"
            " WHERE i.indexrelid = to_regclass(%s)",
            (f"{schema}.items_queue_idx",),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_create_index_concurrently_runs_in_a_marked_migration(
    db_url: str, package: tuple[str, Path]
) -> None:
    name, folder = package
    _write(folder, name, _TABLE, _REBUILD)

    assert migrate(db_url, package=name, schema=name) == [1, 2]

    definition, valid = _index_def(db_url, name)
    assert "(queue)" in definition
    assert valid
    with psycopg.connect(db_url) as conn:
        assert applied_versions(conn, name) == [1, 2]
    assert migrate(db_url, package=name, schema=name) == []  # applied once


_BUILD_WAITING = """
SELECT count(*) = 1 FROM pg_stat_activity
WHERE datname = current_database() AND wait_event_type = 'Lock'
  AND query LIKE 'CREATE INDEX CONCURRENTLY%'
"""


def _build_waiting(probe: psycopg.Connection[tuple[bool]]) -> bool:
    row = probe.execute(_BUILD_WAITING).fetchone()
    return bool(row and row[0])


def test_writers_are_not_blocked_while_the_index_is_built(
    db_url: str, package: tuple[str, Path]
) -> None:
    """A transaction that wrote to the table is open: the concurrent build waits for it, and
    meanwhile other writers go on (a plain CREATE INDEX would queue them behind it)."""
    name, folder = package
    _write(folder, name, _TABLE)
    migrate(db_url, package=name, schema=name)
    _write(folder, name, _TABLE, _REBUILD)

    errors: list[BaseException] = []

    def run() -> None:
        try:
            migrate(db_url, package=name, schema=name)
        except BaseException as exc:  # asserted below
            errors.append(exc)

    # The probe is autocommit: an open transaction of its own would also hold the build up
    # (and pg_stat_activity is read once per transaction).
    with psycopg.connect(db_url) as open_tx, psycopg.connect(db_url, autocommit=True) as probe:
        open_tx.execute(f"INSERT INTO {name}.items VALUES (-1, 'open')")  # holds its xid
        thread = threading.Thread(target=run)
        thread.start()
        try:
            # The build is waiting for open_tx to end (a lock wait on its transaction).
            wait_until(lambda: _build_waiting(probe), 30, "the index build to wait")
            with psycopg.connect(db_url, autocommit=True) as writer:
                writer.execute("SET lock_timeout = '5s'")
                writer.execute(f"INSERT INTO {name}.items VALUES (-2, 'meanwhile')")
                writer.execute(f"UPDATE {name}.items SET queue = 'moved' WHERE id = 1")
        finally:
            open_tx.commit()
            thread.join(timeout=60)
    assert not thread.is_alive()
    assert errors == []
    definition, valid = _index_def(db_url, name)
    assert "(queue)" in definition and valid


def test_a_marked_migration_with_dollar_quoting_is_refused(
    db_url: str, package: tuple[str, Path]
) -> None:
    name, folder = package
    _write(
        folder,
        name,
        f"{NO_TRANSACTION_MARKER}\nCREATE FUNCTION {{schema}}.f() RETURNS int"
        " LANGUAGE sql AS $$ SELECT 1; $$;\n",
    )
    with pytest.raises(MigrationError, match="dollar quoting"):
        migrate(db_url, package=name, schema=name)
