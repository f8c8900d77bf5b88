"""Who may do what: project roles and the admin-only library.

Row-level security (migration 0003) is what keeps other projects' rows out of reach: a
request runs as nightcrew's per-user role and simply cannot see them (404). The checks here
run on top of it, in the same transaction, to answer a clear 403 when the acting user sees
a project but lacks the role for the action, or is not an admin for a library write.
"""

from __future__ import annotations

from typing import Any, Literal

import psycopg

from estimating.errors import Forbidden, UnknownCode
from estimating.sql import query
from nightcrew.http import Principal

Role = Literal["owner", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("owner", "editor", "viewer")
ANY_MEMBER: frozenset[str] = frozenset(ROLES)
WRITERS: frozenset[str] = frozenset({"owner", "editor"})
OWNERS: frozenset[str] = frozenset({"owner"})


def require_admin(user: Principal, action: str) -> None:
    """:class:`Forbidden` unless ``user`` is an admin: the library is the company's, shared
    by every user, so only admins change it."""
    if not user.is_admin:
        raise Forbidden(f"{action} needs an admin API key")


async def project_role(conn: psycopg.AsyncConnection[Any], project_id: str, user: Principal) -> str:
    """``user``'s role in the project (``"admin"`` for admins); :class:`UnknownCode` when the
    project does not exist or ``user`` may not see it (the two are indistinguishable)."""
    cur = await conn.execute(query("project_get"), {"id": project_id})
    if await cur.fetchone() is None:
        raise UnknownCode(f"unknown project {project_id!r}", field="project_id")
    if user.is_admin:
        return "admin"
    cur = await conn.execute(
        query("project_role"), {"project_id": project_id, "user_id": user.user_id}
    )
    row = await cur.fetchone()
    if row is None:  # visible only to members, so only a table owner's call gets here
        raise UnknownCode(f"unknown project {project_id!r}", field="project_id")
    return str(row[0])


async def require_project_role(
    conn: psycopg.AsyncConnection[Any],
    project_id: str,
    user: Principal,
    allowed: frozenset[str],
    action: str,
) -> str:
    """``user``'s role in the project if it is one of ``allowed`` (admins always pass);
    404 when the project is not visible, 403 when the role does not allow ``action``."""
    role = await project_role(conn, project_id, user)
    if role != "admin" and role not in allowed:
        needed = " or ".join(r for r in ROLES if r in allowed)
        raise Forbidden(
            f"{action} needs the {needed} role in project {project_id!r} (yours: {role})",
            field="project_id",
        )
    return role
