"""Every named query of the prospecting app PREPAREs against the migrated schema (so a
query that no longer matches it fails here, not in a campaign)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.core.test_queries_prepare import positional

QUERIES = sorted((Path(__file__).resolve().parents[2] / "apps" / "prospecting" / "sql"
                  / "queries").glob("*.sql"))  # fmt: skip
TYPES: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def conn(pro_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pro_db, autocommit=True) as connection:
        yield connection


def test_the_queries_are_found() -> None:
    assert len(QUERIES) >= 15


@pytest.mark.parametrize("path", QUERIES, ids=lambda p: p.stem)
def test_query_prepares_against_the_schema(conn: psycopg.Connection[Any], path: Path) -> None:
    text, types = positional(path.read_text(encoding="utf-8"), TYPES.get(path.stem, {}))
    type_list = f" ({', '.join(types)})" if types else ""
    with conn.transaction(force_rollback=True):
        conn.execute(f"PREPARE named_query{type_list} AS {text}")
        conn.execute("DEALLOCATE named_query")
