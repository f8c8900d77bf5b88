"""The unit tier runs first and needs no database: a test here that asks for one of the
database fixtures of tests/conftest.py fails at collection."""

from __future__ import annotations

import pytest

DATABASE_FIXTURES = frozenset({"server_url", "template_db", "db_url", "clean_db", "aapp"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse unit tests that depend on a database fixture."""
    for item in items:
        used = DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and "tests/unit/" in item.nodeid:
            raise pytest.UsageError(f"{item.nodeid} is a unit test but uses {sorted(used)}")
