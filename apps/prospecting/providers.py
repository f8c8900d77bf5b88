"""The three providers behind small interfaces, and their HTTP clients (httpx).

Every HTTP attempt first takes a slot of the provider's rate limit (``throttle``: in a job,
nightcrew's keyed limit shared by every worker). A 429 is retried after its
``Retry-After``; a 5xx, a timeout or a dropped connection after an exponential backoff;
other 4xx are errors at once. Only a 200 is a paid call.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from prospecting.settings import Provider

Throttle = Callable[[], AbstractAsyncContextManager[object]]
"""Returns the context manager that holds one slot of the provider's rate limit."""

MAX_ATTEMPTS = 6
BACKOFF_BASE = 0.2
"""Seconds before the first retry of a 5xx; doubled each time, with jitter."""
RETRY_AFTER_CAP = 30.0
"""A provider asking to wait longer than this is waited this long (then asked again)."""


class ProviderError(Exception):
    """A provider call failed for good (retries exhausted, or refused with a 4xx)."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


@dataclass(frozen=True)
class Place:
    """One business as the place search returns it."""

    place_id: str
    name: str
    address: str | None
    website: str | None
    phone: str | None
    rating: float | None
    reviews: int | None


@dataclass(frozen=True)
class PlacePage:
    """One page of a place search, and the token of the next one (``None``: the last)."""

    places: list[Place]
    next_token: str | None


@dataclass(frozen=True)
class FoundEmail:
    """The email finder's answer for a domain (``email`` is ``None`` when none is known)."""

    email: str | None
    score: int | None = None


class PlaceSearch(Protocol):
    """Text search of businesses, page by page."""

    async def search(
        self, text: str, page_token: str | None = None, *, idempotency_key: str | None = None
    ) -> PlacePage:
        """One page of the businesses matching ``text`` (``page_token`` from the last)."""


class EmailFinder(Protocol):
    """Find a contact email for a domain."""

    async def find(self, domain: str, *, idempotency_key: str | None = None) -> FoundEmail:
        """The best contact email of ``domain``, if any."""


class EmailVerifier(Protocol):
    """Check whether an email address accepts mail."""

    async def verify(self, email: str, *, idempotency_key: str | None = None) -> str:
        """``valid``, ``invalid``, ``catchall`` or ``unknown``."""


def retry_after_seconds(header: str | None, fallback: float) -> float:
    """The wait a 429 asks for (``Retry-After`` in seconds), capped; ``fallback`` when
    absent or not a number (an HTTP date is treated as absent)."""
    try:
        seconds = float(header) if header is not None else fallback
    except ValueError:
        seconds = fallback
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def backoff_seconds(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff with +-25 % jitter before retry number ``attempt`` (1-based)."""
    return float(base * 2 ** (attempt - 1) * random.uniform(0.75, 1.25))


class ProviderClient:
    """HTTP GETs to one provider with its key, timeout, rate limit and retries."""

    def __init__(
        self,
        provider: Provider,
        http: httpx.AsyncClient,
        throttle: Throttle,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        self.provider = provider
        self.http = http
        self.throttle = throttle
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.attempts = 0
        """HTTP requests sent so far (retries included)."""

    async def get(
        self, path: str, params: dict[str, str], idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """The JSON body of the first 200 answer to ``GET path``, retrying as documented.
        ``idempotency_key`` is sent as ``Idempotency-Key``: a provider that honours it
        answers a repeated key without charging again (a retry, a resumed job)."""
        headers = {"X-Api-Key": self.provider.key}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        name = self.provider.name
        problem = "no attempt"
        for attempt in range(1, self.max_attempts + 1):
            wait = 0.0
            try:
                async with self.throttle():
                    self.attempts += 1
                    response = await self.http.get(
                        f"{self.provider.url}{path}",
                        params=params,
                        headers=headers,
                    )
            except httpx.TransportError as exc:  # timeouts and connection failures
                problem = f"{type(exc).__name__}"
                wait = backoff_seconds(attempt, self.backoff_base)
            else:
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
                problem = f"HTTP {response.status_code}"
                if response.status_code == 429:
                    wait = retry_after_seconds(
                        response.headers.get("Retry-After"),
                        backoff_seconds(attempt, self.backoff_base),
                    )
                elif response.status_code < 500:
                    raise ProviderError(name, f"{problem}: {response.text[:200]}")
                else:
                    wait = backoff_seconds(attempt, self.backoff_base)
            if attempt < self.max_attempts:
                await asyncio.sleep(wait)
        raise ProviderError(name, f"gave up after {self.max_attempts} attempts ({problem})")


class HttpPlaceSearch:
    """:class:`PlaceSearch` over HTTP: ``GET {url}/search?query=&pageToken=``."""

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def search(
        self, text: str, page_token: str | None = None, *, idempotency_key: str | None = None
    ) -> PlacePage:
        """See :meth:`PlaceSearch.search`."""
        params = {"query": text, **({"pageToken": page_token} if page_token else {})}
        body = await self.client.get("/search", params, idempotency_key)
        places = [_place(item) for item in body.get("results", [])]
        return PlacePage(places, body.get("next_page_token") or None)


def _place(item: dict[str, Any]) -> Place:
    rating = item.get("rating")
    reviews = item.get("user_ratings_total")
    return Place(
        place_id=str(item["place_id"]),
        name=str(item.get("name") or ""),
        address=item.get("formatted_address"),
        website=item.get("website") or None,
        phone=item.get("formatted_phone_number") or None,
        rating=float(rating) if rating is not None else None,
        reviews=int(reviews) if reviews is not None else None,
    )


class HttpEmailFinder:
    """:class:`EmailFinder` over HTTP: ``GET {url}/domain-search?domain=``."""

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def find(self, domain: str, *, idempotency_key: str | None = None) -> FoundEmail:
        """See :meth:`EmailFinder.find`."""
        body = await self.client.get("/domain-search", {"domain": domain}, idempotency_key)
        data = body.get("data") or {}
        return FoundEmail(data.get("email") or None, data.get("score"))


class HttpEmailVerifier:
    """:class:`EmailVerifier` over HTTP: ``GET {url}/check?email=``."""

    def __init__(self, client: ProviderClient) -> None:
        self.client = client

    async def verify(self, email: str, *, idempotency_key: str | None = None) -> str:
        """See :meth:`EmailVerifier.verify`."""
        body = await self.client.get("/check", {"email": email}, idempotency_key)
        result = str(body.get("result") or "unknown")
        return result if result in ("valid", "invalid", "catchall") else "unknown"
