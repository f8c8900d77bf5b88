"""``acting(first=...)`` sends a route's statement with the key check in one parameter set:
a parameter of the same name as the check's would rebind it, so it is refused before any
database work."""

from __future__ import annotations

import asyncio

import pytest
from psycopg import sql

from nightcrew import App
from nightcrew.http import acting


def test_a_first_statement_may_not_rebind_the_key_checks_parameter() -> None:
    app = App(database_url="postgresql://nobody@127.0.0.1:1/none")
    first = (sql.SQL("SELECT %(key_hash)s"), {"key_hash": b"someone else's"})

    async def enter() -> None:
        async with acting(app, "nck_secret", first=first):
            pass

    with pytest.raises(ValueError, match="key_hash"):
        asyncio.run(enter())
