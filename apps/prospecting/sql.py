"""Named SQL queries of the prospecting app, one ``.sql`` file each under ``sql/queries/``."""

from __future__ import annotations

from psycopg import sql

from nightcrew import load_query


def query(name: str) -> sql.SQL:
    """Return the query stored in ``prospecting/sql/queries/<name>.sql``."""
    return load_query(name, package="prospecting")
