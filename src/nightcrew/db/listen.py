"""LISTEN on a connection of its own, reconnecting for as long as the caller runs it.

The worker (job wake-ups and cancellations) and the HTTP server's event hubs (live progress,
in-app notifications) both keep one such connection; this is their shared loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger("nightcrew.listen")

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 5.0
CHECK_SECONDS = 15.0
"""Default of how long a LISTEN connection may stay silent before it is probed."""
KEEPALIVE_PROBES = 3


class ListenStalled(Exception):
    """The LISTEN connection did not answer a probe in time (e.g. a half-open TCP link)."""


def keepalive_options(check_seconds: float) -> dict[str, Any]:
    """libpq options that make the kernel probe an idle connection after ``check_seconds``
    and drop it after a few unanswered probes."""
    idle = max(1, math.ceil(check_seconds))
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": max(1, math.ceil(idle / KEEPALIVE_PROBES)),
        "keepalives_count": KEEPALIVE_PROBES,
    }


async def open_listen_connection(
    url: str, check_seconds: float = CHECK_SECONDS
) -> psycopg.AsyncConnection[Any]:
    """An autocommit connection with TCP keepalives, for LISTEN."""
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, **keepalive_options(check_seconds)
    )


async def _probe(conn: psycopg.AsyncConnection[Any], timeout: float) -> None:
    """``SELECT 1`` within ``timeout``; raise :class:`ListenStalled` otherwise. A silently
    dropped link (no FIN, no RST) would otherwise leave the loop waiting forever."""
    probe = asyncio.ensure_future(conn.execute("SELECT 1"))
    try:
        done, _ = await asyncio.wait({probe}, timeout=timeout)
    finally:
        if not probe.done():
            # Not probe.cancel(): psycopg would try to cancel the query over the dead link
            # and wait seconds for its end. Shutting the socket makes the probe fail now.
            _shut_socket(conn)
            with contextlib.suppress(psycopg.Error):
                await probe
    if not done:
        raise ListenStalled(f"no answer to a probe within {timeout:g}s")
    probe.result()


def _shut_socket(conn: psycopg.AsyncConnection[Any]) -> None:
    with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


async def _relay(
    conn: psycopg.AsyncConnection[Any],
    on_notify: Callable[[str, str], None],
    check_seconds: float,
) -> None:
    """Hand every notification to ``on_notify``; probe the connection after each
    ``check_seconds`` without one."""
    while True:
        quiet = True
        async for note in conn.notifies(timeout=check_seconds):
            quiet = False
            on_notify(note.channel, note.payload)
        if quiet:
            await _probe(conn, check_seconds)


async def listen_forever(
    url: str,
    channels: Iterable[str],
    on_notify: Callable[[str, str], None],
    *,
    on_listening: Callable[[], None],
    on_lost: Callable[[], None],
    check_seconds: float = CHECK_SECONDS,
) -> None:
    """Call ``on_notify(channel, payload)`` for every notification on ``channels``, until
    cancelled. A lost connection is reopened with exponential backoff.

    ``on_listening`` runs each time LISTEN is (re)established. Notifications sent while the
    connection was down are gone, so callers re-check their state there. ``on_lost`` runs
    when the connection is lost. A connection silent for ``check_seconds`` is probed and
    reopened when the probe gets no answer within as long again (TCP keepalives, set to
    the same idle time, catch a dead link while a query waits).
    """
    names = list(channels)
    # Our own channel constants, sent unquoted (as they appear in pg_stat_activity).
    if not all(name.isidentifier() and name.islower() for name in names):
        raise ValueError(f"channel names must be lower-case identifiers: {names}")
    delay = FIRST_RETRY_SECONDS
    while True:
        try:
            conn = await open_listen_connection(url, check_seconds)
            async with conn:
                for name in names:
                    await conn.execute(sql.SQL(f"LISTEN {name}"))  # checked above
                delay = FIRST_RETRY_SECONDS
                on_listening()
                await _relay(conn, on_notify, check_seconds)
        except (psycopg.Error, ListenStalled) as exc:
            log.warning("LISTEN %s: connection lost (%s); reconnecting in %.1fs",
                        ",".join(names), exc, delay)  # fmt: skip
        on_lost()
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_RETRY_SECONDS)
