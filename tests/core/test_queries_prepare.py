"""Every named query PREPAREs against the migrated schema (nightcrew's and the estimating
app's), so a query that no longer matches the schema fails here rather than in production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nightcrew.db.migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
QUERY_DIRS = [
    SRC / "nightcrew" / "sql" / "queries",
    ROOT / "apps" / "estimating" / "sql" / "queries",
]
QUERIES = sorted(path for folder in QUERY_DIRS for path in folder.glob("*.sql"))
PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")
PREPARABLE = re.compile(r"^[\s(]*(SELECT|WITH|INSERT|UPDATE|DELETE|VALUES|MERGE)\b", re.IGNORECASE)

# Queries that use a temporary table another query creates in the same transaction.
SETUP = {
    "insert_staged_jobs": ["stage_jobs"],
    "insert_staged_jobs_queued": ["stage_jobs"],
    "popularity_recent_fill": ["popularity_recent_create"],
    "popularity_recent_analyze": ["popularity_recent_create"],
    "cooccurrence_insert": ["popularity_recent_create"],
    "popularity_upsert": ["popularity_recent_create"],
}
# Parameter types PostgreSQL cannot infer from the query text: {query: {param: type}}.
# (psycopg sends a datetime typed, so ``%(now)s - interval '30 days'`` works at run time.)
TYPES: dict[str, dict[str, str]] = {
    "popularity_recent_fill": {"now": "timestamptz"},
    "popularity_upsert": {"now": "timestamptz"},
}


def positional(text: str, types: dict[str, str]) -> tuple[str, list[str]]:
    """The query with psycopg's ``%(name)s`` turned into ``$n`` (one n per name) and ``%%``
    into ``%``; and the PREPARE type list (``unknown`` lets PostgreSQL infer)."""
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name is None:
            return "%"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    converted = PLACEHOLDER.sub(replace, text.strip().rstrip(";"))
    return converted, [types.get(name, "unknown") for name in names]


def body(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def by_name(name: str) -> Path:
    return next(path for path in QUERIES if path.stem == name)


@pytest.fixture(scope="module")
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the module's database with the estimating migrations applied too."""
    migrate(db_url, package="estimating", schema="estimating")
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def test_every_query_folder_is_found() -> None:
    assert {path.parent for path in QUERIES} == set(QUERY_DIRS)
    assert len(QUERIES) > 100


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: f"{p.parts[-4]}/{p.stem}")
def test_query_prepares_against_the_schema(conn: psycopg.Connection[Any], path: Path) -> None:
    text, types = positional(body(path), TYPES.get(path.stem, {}))
    try:
        with conn.transaction(force_rollback=True):
            for setup in SETUP.get(path.stem, []):
                conn.execute(positional(body(by_name(setup)), {})[0])
            if PREPARABLE.match(re.sub(r"--[^\n]*", "", text)):
                type_list = f" ({', '.join(types)})" if types else ""
                conn.execute(f"PREPARE named_query{type_list} AS {text}")
                conn.execute("DEALLOCATE named_query")
            else:  # a utility statement (CREATE TEMP TABLE, ANALYZE): run it, rolled back
                assert not types, f"{path.name}: a utility statement cannot take parameters"
                conn.execute(text)
    except psycopg.Error as exc:
        pytest.fail(f"{path.relative_to(ROOT)} does not prepare: {exc}")


def test_the_placeholder_conversion() -> None:
    text, types = positional("SELECT %(a)s::int, %(b)s, %(a)s, format('%%s %%%%');", {"b": "text"})
    assert text == "SELECT $1::int, $2, $1, format('%s %%')"
    assert types == ["unknown", "text"]


def test_a_query_that_does_not_match_the_schema_fails(conn: psycopg.Connection[Any]) -> None:
    text, _ = positional("SELECT no_such_column FROM nightcrew.jobs WHERE id = %(id)s", {})
    with pytest.raises(psycopg.errors.UndefinedColumn), conn.transaction(force_rollback=True):
        conn.execute(f"PREPARE broken AS {text}")
