"""Small helpers of the workspace tests: an HTTP client on the App, plain-SQL writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg

from nightcrew import App
from nightcrew.http import create_app


@asynccontextmanager
async def client(app: App, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the App's real ASGI application, authenticated with ``key``."""
    transport = httpx.ASGITransport(app=create_app(app))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers={"Authorization": f"Bearer {key}"}
    ) as http:
        yield http


def rows(url: str, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Every row of ``statement`` on a fresh autocommit connection."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(statement, params).fetchall()


def scalar(url: str, statement: str, params: Any = None) -> Any:
    """The first column of the first row."""
    found = rows(url, statement, params)
    return found[0][0] if found else None


def insert_documents(url: str, owner: str, docs: list[tuple[str, str]]) -> list[str]:
    """Insert documents by plain SQL, in one transaction (as psql or another service
    would); their ids."""
    with psycopg.connect(url) as conn:
        ids = [
            str(
                conn.execute(
                    "INSERT INTO workspace.documents (owner, title, content)"
                    " VALUES (%s, %s, %s) RETURNING id",
                    (owner, t, c),
                ).fetchone()[0]
            )  # type: ignore[index]
            for t, c in docs
        ]
        conn.commit()
    return ids
