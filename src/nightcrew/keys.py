"""API keys for the HTTP API: create, list and revoke; only a key's sha256 is stored.

A key is 32 random bytes (``secrets.token_urlsafe``), so it cannot be guessed or
brute-forced from its hash; a slow password hash (bcrypt, argon2) buys nothing for such
high-entropy tokens and would cost milliseconds on every request. SHA-256 is enough.
"""

from __future__ import annotations

import getpass
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew.errors import NightcrewError
from nightcrew.ids import uuid7
from nightcrew.queries import query

KEY_PREFIX = "nck_"
USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")


class ApiKeyError(NightcrewError):
    """A key operation was refused (bad user name, unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    id: UUID
    user_id: str
    is_admin: bool
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiKey:
        """Build from a ``nightcrew.api_keys`` row."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict."""
        return {
            "id": str(self.id), "user_id": self.user_id, "is_admin": self.is_admin,
            "prefix": self.prefix, "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }  # fmt: skip


def hash_key(key: str) -> bytes:
    """The digest stored for ``key``."""
    return hashlib.sha256(key.encode()).digest()


def default_actor() -> str:
    """Who the audit log names for a key change made from the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def create_key(
    conn: psycopg.Connection[Any], user_id: str, *, admin: bool = False, actor: str | None = None
) -> tuple[ApiKey, str]:
    """Create a key for ``user_id``; return the stored record and the secret (shown once)."""
    if not isinstance(user_id, str) or not USER_NAME.match(user_id):
        raise ApiKeyError(
            f"user name must be 1-100 characters of letters, digits, '_', '.', '@' or '-', "
            f"got {user_id!r}"
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    params = {
        "id": uuid7(), "user_id": user_id, "is_admin": admin, "key_hash": hash_key(secret),
        "prefix": secret[: len(KEY_PREFIX) + 8], "actor": actor or default_actor(),
    }  # fmt: skip
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query("keys_create"), params).fetchone()
    assert row is not None
    return ApiKey.from_row(row), secret


def list_keys(conn: psycopg.Connection[Any]) -> list[ApiKey]:
    """Every key, oldest first, revoked ones included."""
    with conn.cursor(row_factory=dict_row) as cur:
        return [ApiKey.from_row(row) for row in cur.execute(query("keys_list")).fetchall()]


def revoke_key(conn: psycopg.Connection[Any], key: str, *, actor: str | None = None) -> ApiKey:
    """Revoke the key with this id or printed prefix; raise when there is no live one."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            query("keys_revoke"), {"key": key, "actor": actor or default_actor()}
        ).fetchall()
        if len(rows) > 1:
            raise ApiKeyError(f"{key!r} matches {len(rows)} keys; revoke by id")  # rolls back
    if not rows:
        raise ApiKeyError(f"no live key with id or prefix {key!r}")
    return ApiKey.from_row(rows[0])


async def admin_user_ids(conn: psycopg.AsyncConnection[Any]) -> list[str]:
    """The users holding a live (not revoked) admin key, sorted: whom an application tells
    about things only admins act on (e.g. with in-app notifications)."""
    cur = await conn.execute(query("keys_admin_users"))
    return [row[0] for row in await cur.fetchall()]
