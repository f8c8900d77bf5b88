"""Named SQL queries of the estimating app, one ``.sql`` file each under ``sql/queries/``."""

from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql


@cache
def query(name: str) -> sql.SQL:
    """Return the query stored in ``estimating/sql/queries/<name>.sql``."""
    path = resources.files("estimating") / "sql" / "queries" / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"no estimating query named {name!r}") from None
    return sql.SQL(text.strip())  # trusted files shipped with us
