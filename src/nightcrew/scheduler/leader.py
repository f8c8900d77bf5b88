"""Leader election: one scheduler per database fires ticks.

The leader holds a session-level advisory lock on a connection of its own. When the leader
dies its connection closes and PostgreSQL frees the lock; the other schedulers try to take
it every ``scheduler_poll_seconds``, so a new leader takes over within about that long.
TCP keepalives on the lock connection make the server notice a vanished host (power loss,
network cut) within seconds too, instead of the OS default of hours.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

import psycopg

log = logging.getLogger("nightcrew.scheduler")

# Arbitrary constant key for pg_try_advisory_lock: "nc-sched" as ASCII.
SCHEDULER_LOCK_KEY = int.from_bytes(b"nc-sched", "big")
APPLICATION_NAME_PREFIX = "nightcrew-scheduler"

_KEEPALIVES: dict[str, Any] = {"keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                               "keepalives_count": 3}  # fmt: skip
_SERVER_KEEPALIVES = (
    "SET tcp_keepalives_idle = 5",
    "SET tcp_keepalives_interval = 2",
    "SET tcp_keepalives_count = 3",
)


def application_name() -> str:
    """The lock connection's ``application_name``: tells operators which process leads."""
    return f"{APPLICATION_NAME_PREFIX}:{socket.gethostname()}:{os.getpid()}"[:63]


class Leadership:
    """Try to become, and stay, the scheduler leader of the database at ``url``."""

    def __init__(self, url: str, *, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.url = url
        self.key = key
        self._conn: psycopg.AsyncConnection[Any] | None = None

    @property
    def held(self) -> bool:
        """Whether this process believes it leads (checked with :meth:`confirm`)."""
        return self._conn is not None

    async def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process now leads."""
        if self._conn is not None:
            return await self.confirm()
        conn = await psycopg.AsyncConnection.connect(
            self.url, autocommit=True, application_name=application_name(), **_KEEPALIVES
        )
        try:
            for statement in _SERVER_KEEPALIVES:  # ignored on unix sockets, harmless
                await conn.execute(statement)
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
            row = await cur.fetchone()
        except BaseException:
            await conn.close()
            raise
        if row and row[0]:
            self._conn = conn
            return True
        await conn.close()
        return False

    async def confirm(self) -> bool:
        """Check that the lock connection is alive (so the lock is still ours)."""
        if self._conn is None:
            return False
        try:
            await self._conn.execute("SELECT 1")
            return True
        except psycopg.Error as exc:
            log.warning("scheduler lock connection lost (%s): stepping down", exc)
            await self._drop()
            return False

    async def release(self) -> None:
        """Give up leadership (closing the connection frees the lock)."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        await self._drop()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.close()
