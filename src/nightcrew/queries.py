"""Named SQL queries, one ``.sql`` file each under ``sql/queries/``, loaded once."""

from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql


@cache
def query(name: str) -> sql.SQL:
    """Return the query stored in ``sql/queries/<name>.sql``."""
    path = resources.files("nightcrew") / "sql" / "queries" / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r}") from None
    # Trusted text: files shipped inside the package, never user input.
    return sql.SQL(text.strip())
