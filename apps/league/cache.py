"""The statistics cache of one web process, and the LISTEN connection that invalidates it.

Entries are keyed by (tag, variant) and dropped by tag when a ``league_cache``
notification names it: the end of a run, or ``POST /api/league/internal/cache/invalidate``
in any process. The cache serves only while its LISTEN connection is up; when the
connection drops, everything is forgotten and reads go to the database until it is back,
so a notification missed meanwhile can't leave a stale entry behind. A read that began
before an invalidation of its tag is not stored (a generation per tag), so a slow read
can't put the old value back after the drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

from league.runs import CACHE_CHANNEL, RUNS_CHANNEL

if TYPE_CHECKING:
    from nightcrew import App

log = logging.getLogger("league.cache")
RECONNECT_SECONDS = 0.5
APPLICATION_NAME = "league-cache-listen"
"""The LISTEN connection's ``application_name`` (pg_stat_activity)."""
CHECK_SECONDS = 5.0
"""How often a quiet LISTEN connection is checked to be alive."""


@dataclass
class Invalidation:
    """The last invalidation this process applied (tests and the benchmark read it)."""

    tags: list[str]
    run_id: str | None
    sent_at: float | None
    received_at: float


@dataclass
class StatsCache:
    """Tag-aware cache of serialised statistics (JSON text), for one process."""

    entries: dict[tuple[str, str], str] = field(default_factory=dict)
    generations: dict[str, int] = field(default_factory=dict)
    listening: bool = False
    last: Invalidation | None = None
    hits: int = 0
    misses: int = 0

    async def get(self, tag: str, variant: str, load: Callable[[], Awaitable[str]]) -> str:
        """The cached value of (tag, variant), else ``load()``'s, stored unless the tag was
        invalidated while it loaded (or the cache is not listening)."""
        key = (tag, variant)
        if self.listening and key in self.entries:
            self.hits += 1
            return self.entries[key]
        self.misses += 1
        generation = self.generations.get(tag, 0)
        value = await load()
        if self.listening and self.generations.get(tag, 0) == generation:
            self.entries[key] = value
        return value

    def invalidate(self, tags: list[str]) -> None:
        """Drop every entry of ``tags``."""
        wanted = set(tags)
        for tag in wanted:
            self.generations[tag] = self.generations.get(tag, 0) + 1
        for key in [k for k in self.entries if k[0] in wanted]:
            del self.entries[key]

    def forget_all(self) -> None:
        """Drop everything (the LISTEN connection was lost: notifications may be missed)."""
        self.invalidate(list({tag for tag, _ in self.entries} | set(self.generations)))
        self.entries.clear()

    def status(self) -> dict[str, Any]:
        """What this process holds, for ``GET /api/league/cache``."""
        last = self.last
        return {
            "listening": self.listening,
            "entries": sorted(f"{tag}:{variant}" for tag, variant in self.entries),
            "hits": self.hits,
            "misses": self.misses,
            "lastInvalidation": None if last is None else {
                "tags": last.tags, "runId": last.run_id, "sentAt": last.sent_at,
                "receivedAt": last.received_at,
            },
        }  # fmt: skip


class LeagueHub:
    """One LISTEN connection per web process: cache invalidations drop tags from
    :attr:`cache`; run changes wake the League page's live streams."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.cache = StatsCache()
        self._run_watchers: set[asyncio.Event] = set()
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self, timeout: float = 5.0) -> None:
        """Start listening (once per process). The first call waits up to ``timeout`` for
        LISTEN; later calls never wait: while the connection is down the cache is off."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.create_task(self._run(), name="league-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), timeout)

    def watch_runs(self) -> asyncio.Event:
        """An event set whenever a run changes (or the connection came back)."""
        event = asyncio.Event()
        self._run_watchers.add(event)
        return event

    def unwatch_runs(self, event: asyncio.Event) -> None:
        """Stop waking ``event``."""
        self._run_watchers.discard(event)

    def _wake_run_watchers(self) -> None:
        for event in self._run_watchers:
            event.set()

    def _on_notify(self, channel: str, payload: str) -> None:
        if channel == RUNS_CHANNEL:
            self._wake_run_watchers()
            return
        try:
            message = json.loads(payload)
            tags = [str(tag) for tag in message["tags"]]
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed %s notification: %.200s", channel, payload)
            return
        self.cache.invalidate(tags)
        self.cache.last = Invalidation(
            tags, message.get("runId"), message.get("sentAt"), time.time()
        )

    async def _run(self) -> None:
        while True:
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost: reconnect; serve nothing from memory meanwhile
                log.warning("league LISTEN connection lost (%s); reconnecting", exc)
            self._lost()
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _listen_once(self) -> None:
        async with (
            await psycopg.AsyncConnection.connect(  # LISTEN needs a session: never the pooler
                self.app.direct_url, autocommit=True, application_name=APPLICATION_NAME
            ) as conn
        ):
            await conn.execute(f"LISTEN {CACHE_CHANNEL}")
            await conn.execute(f"LISTEN {RUNS_CHANNEL}")
            self.cache.listening = True
            self._listening.set()
            self._wake_run_watchers()  # a change made while not listening is not missed
            while True:
                async for notification in conn.notifies(timeout=CHECK_SECONDS):
                    self._on_notify(notification.channel, notification.payload)
                await conn.execute("SELECT 1")  # a silently dead connection raises here

    def _lost(self) -> None:
        self.cache.listening = False
        self._listening.clear()
        self.cache.forget_all()

    async def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._lost()
