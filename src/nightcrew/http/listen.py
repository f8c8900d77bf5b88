"""One LISTEN connection per server process, fanned out to many waiting streams.

SSE streams subscribe to a key (a job id, a user) and get an :class:`asyncio.Event` that is
set whenever a notification on the hub's channel names that key. Nothing polls the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Generic, TypeVar

from nightcrew.db.listen import listen_forever

if TYPE_CHECKING:
    from nightcrew.app import App

K = TypeVar("K", bound=Hashable)


class ListenHub(Generic[K]):
    """Fans the notifications of ``channel`` out to the subscribers of the keys they name.

    ``parse`` turns a payload into the keys it concerns; ``also`` are keys woken by every
    notification (e.g. "any job"). After a reconnect every subscriber is woken once, so a
    change made while the connection was down is never missed.
    """

    def __init__(
        self,
        app: App,
        channel: str,
        parse: Callable[[str], Iterable[K]],
        also: Iterable[K] = (),
    ) -> None:
        self.app = app
        self.channel = channel
        self._parse = parse
        self._also = tuple(also)
        self._subscribers: dict[K, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def subscribe(self, key: K, timeout: float = 10.0) -> asyncio.Event:
        """An event set whenever ``key`` is named (LISTEN is active on return)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"nightcrew-listen-{self.channel}")
        wake = asyncio.Event()
        self._subscribers.setdefault(key, set()).add(wake)
        try:
            await asyncio.wait_for(self._listening.wait(), timeout)
        except BaseException:
            self.unsubscribe(key, wake)
            raise
        return wake

    def unsubscribe(self, key: K, wake: asyncio.Event) -> None:
        """Stop waking ``wake``."""
        waiters = self._subscribers.get(key)
        if waiters is not None:
            waiters.discard(wake)
            if not waiters:
                del self._subscribers[key]

    @property
    def subscriptions(self) -> int:
        """How many streams are subscribed (tests use this)."""
        return sum(len(w) for w in self._subscribers.values())

    def wake(self, keys: Iterable[K] | None) -> None:
        """Wake the subscribers of ``keys`` (and of the ``also`` keys); ``None``: everyone."""
        targets = list(self._subscribers) if keys is None else [*keys, *self._also]
        for key in targets:
            for event in self._subscribers.get(key, ()):
                event.set()

    async def _run(self) -> None:
        def listening() -> None:
            self._listening.set()
            self.wake(None)  # changes made while not listening must not be missed

        await listen_forever(
            self.app.direct_url,  # LISTEN needs a session of its own, not a pooler's
            (self.channel,),
            lambda _channel, payload: self.wake(self._parse(payload)),
            on_listening=listening,
            on_lost=self._listening.clear,
            check_seconds=self.app.settings.listen_check_seconds,
        )

    async def close(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            self._listening.clear()
