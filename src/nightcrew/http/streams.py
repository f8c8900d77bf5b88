"""The one Server-Sent Events loop behind every live stream (a job's events, the inbox badge,
the dashboard's overview and job pages).

A stream is woken by its hub (LISTEN/NOTIFY), re-reads what it shows under its user's
row-level security, and sends a frame only when that changed; idle, it sends a heartbeat
comment (and re-reads then too, a safety net for a missed wake-up). It holds no database
connection while it waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from nightcrew.http.errors import ApiError

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Response headers of an event stream (no caching, no proxy buffering)."""


@dataclass(frozen=True)
class StreamEvent:
    """What a stream shows now: ``version`` tells whether it changed since the last frame,
    ``frame`` is the SSE text to send, ``final`` ends the stream after it."""

    version: str
    frame: str
    final: bool = False


async def event_stream(
    read: Callable[[], Awaitable[StreamEvent | None]],
    wake: asyncio.Event,
    *,
    heartbeat_seconds: float,
    on_close: Callable[[], None],
    first: StreamEvent | None = None,
    last_sent: str | None = None,
    coalesce_seconds: float = 0.0,
) -> AsyncIterator[str]:
    """Yield SSE text: ``first`` (or a fresh read), then a frame after every wake-up whose
    read changed the version, until a final event, a read that returns ``None`` (gone) or
    raises :class:`ApiError` (the key or session was revoked meanwhile). ``on_close``
    unsubscribes ``wake`` from its hub, however the stream ends. ``coalesce_seconds``
    lets a burst of wake-ups cost one read."""
    event = first
    try:
        yield "retry: 2000\n\n"
        while True:
            if event is None:
                wake.clear()  # before reading: a change during the read wakes us again
                try:
                    event = await read()
                except ApiError:
                    return
                if event is None:
                    return
            if event.version != last_sent:
                yield event.frame
                last_sent = event.version
            if event.final:
                return
            event = None
            try:
                await asyncio.wait_for(wake.wait(), heartbeat_seconds)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if coalesce_seconds:
                await asyncio.sleep(coalesce_seconds)
    finally:
        on_close()
