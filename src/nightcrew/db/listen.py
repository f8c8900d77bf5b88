"""LISTEN on a connection of its own, reconnecting for as long as the caller runs it.

The worker (job wake-ups and cancellations) and the HTTP server's event hubs (live progress,
in-app notifications) both keep one such connection; this is their shared loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import psycopg
from psycopg import sql

log = logging.getLogger("nightcrew.listen")

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0


async def listen_forever(
    url: str,
    channels: Iterable[str],
    on_notify: Callable[[str, str], None],
    *,
    on_listening: Callable[[], None],
    on_lost: Callable[[], None],
) -> None:
    """Call ``on_notify(channel, payload)`` for every notification on ``channels``, until
    cancelled. A lost connection is reopened with exponential backoff.

    ``on_listening`` runs each time LISTEN is (re)established. Notifications sent while the
    connection was down are gone, so callers re-check their state there. ``on_lost`` runs
    when the connection is lost.
    """
    names = list(channels)
    # Our own channel constants, sent unquoted (as they appear in pg_stat_activity).
    if not all(name.isidentifier() and name.islower() for name in names):
        raise ValueError(f"channel names must be lower-case identifiers: {names}")
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            async with conn:
                for name in names:
                    await conn.execute(sql.SQL(f"LISTEN {name}"))  # checked above
                delay = FIRST_RETRY_SECONDS
                on_listening()
                async for note in conn.notifies():
                    on_notify(note.channel, note.payload)
        except psycopg.Error as exc:
            log.warning("LISTEN %s: connection lost (%s); reconnecting in %.1fs",
                        ",".join(names), exc, delay)  # fmt: skip
        on_lost()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
