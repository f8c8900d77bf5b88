"""Named SQL queries, one ``.sql`` file each under ``sql/queries/``, loaded once.

Batch statements of the worker (fetch, finish, heartbeat, rescue) run with
``prepare=False``: an unnamed statement is planned with the actual arrays, so ``id = ANY(...)``
is hashed and row estimates are real. A prepared statement's generic plan can instead pick a
sequential scan with an unhashed ``= ANY($1)`` filter (rows x array size comparisons), which
made a drain 10x slower after a bulk load. Small single-row statements stay prepared.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from psycopg import sql


@cache
def query(name: str, package: str = "nightcrew") -> sql.SQL:
    """Return the query stored in ``<package>/sql/queries/<name>.sql``.

    Public: an app keeps its own named queries the same way (``package="myapp"``).
    """
    path = resources.files(package) / "sql" / "queries" / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"no query named {name!r} in {package}") from None
    return sql.SQL(text.strip())  # trusted files shipped inside the package
