"""The provider sandbox: one real HTTP server standing in for all three providers.

    python -m prospecting.sandbox --port 8765 [--latency-ms 200] [--error-rate 0.05]
                                  [--rate-429 0.02] [--retry-after 1] [--seed 7]

``/places/search``, ``/finder/domain-search`` and ``/verifier/check`` answer like the
providers' APIs with deterministic businesses for any query (the same query always finds
the same businesses, emails and verdicts; a query naming ``messy`` gets unclean data: two
websites in three are ``javascript:`` or host-less URLs); ``--error-rate`` of the requests
fail with a 503 and ``--rate-429`` with a 429 and ``Retry-After``. Only a 200 is billed,
and only once per ``Idempotency-Key`` (a repeated key is answered again for free).

``GET /_stats`` reports, per provider, the requests received, the most received in any one
second (the clock's seconds, and any sliding 1-second window) and the billed calls per
subject, so tests can check a rate limit and that nothing was paid twice; ``POST /_reset``
clears them. Point ``PROSPECTING_PLACES_URL`` at ``http://host:port/places`` (and so on).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PAGE_SIZE = 20
MAX_RESULTS = 100
"""Businesses a query finds at most (five pages)."""

_STREETS = ("Main St", "High St", "Oak Ave", "Market Sq", "Mill Rd", "Church Ln", "Park Rd")
_WORDS = ("Golden", "Blue", "Corner", "Urban", "Family", "Harbor", "Summit", "Green", "Royal")


@dataclass
class SandboxConfig:
    """How the sandbox misbehaves."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_429: float = 0.0
    retry_after: float = 1.0
    seed: int = 7


@dataclass
class Traffic:
    """What the sandbox saw: request arrival times and billed calls, per provider."""

    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    billed: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The answer given to each ``Idempotency-Key``: a repeated key gets it again, free."""

    def bill(self, provider: str, subject: str, request: Request, body: dict[str, Any]) -> Response:
        """Charge for ``subject`` (once per idempotency key) and answer ``body``."""
        key = request.headers.get("Idempotency-Key")
        if key and key in self.answers:
            return JSONResponse(self.answers[key], headers={"Idempotent-Replayed": "true"})
        if key:
            self.answers[key] = body
        self.billed[provider][subject] += 1
        return JSONResponse(body)

    def report(self) -> dict[str, Any]:
        """The ``/_stats`` body."""
        return {
            name: {
                "requests": len(times),
                "max_per_clock_second": max(Counter(int(t) for t in times).values(), default=0),
                "max_per_sliding_second": max_in_window(times, 1.0),
                "billed": dict(self.billed[name]),
            }
            for name, times in {**{p: [] for p in ("places", "finder", "verifier")},
                                **self.arrivals}.items()
        }  # fmt: skip


def max_in_window(times: list[float], width: float) -> int:
    """The most arrivals inside any half-open window ``[t, t + width)``."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - width:
            start += 1
        best = max(best, end - start + 1)
    return best


def _digest(*parts: object) -> int:
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big")


def business(query: str, index: int) -> dict[str, Any]:
    """The ``index``-th business of ``query``: always the same."""
    h = _digest("business", query.strip().lower(), index)
    word = _WORDS[h % len(_WORDS)]
    kind = query.strip().split(" in ")[0].title() or "Business"
    name = f"{word} {kind} {index + 1}"
    slug = f"{word.lower()}-{kind.lower().replace(' ', '-')}-{index + 1}-{h % 997}"
    has_site = (h >> 8) % 10 < 8
    has_phone = (h >> 12) % 10 < 7
    rated = (h >> 16) % 10 < 9
    website = f"https://{slug}.example" if has_site else None
    if "messy" in query.lower() and index % 3 < 2:
        # Provider data is not always clean: a script URL, a URL without a host.
        website = ("javascript:alert(document.domain)", "http:///")[index % 3]
    return {
        "place_id": f"pl_{h:016x}",
        "name": name,
        "formatted_address": f"{(h >> 20) % 400 + 1} {_STREETS[(h >> 28) % len(_STREETS)]}",
        "website": website,
        "formatted_phone_number": f"+1 555 {(h >> 32) % 9000 + 1000}" if has_phone else None,
        "rating": round(2.5 + ((h >> 40) % 26) / 10, 1) if rated else None,
        "user_ratings_total": int((h >> 44) % 1500) if rated else None,
    }


def email_of(domain: str) -> dict[str, Any]:
    """The finder's answer for ``domain``: an email for three domains in four."""
    h = _digest("email", domain.lower())
    if h % 4 == 0:
        return {"domain": domain, "email": None, "score": None}
    local = ("info", "hello", "contact", "owner")[(h >> 4) % 4]
    return {"domain": domain, "email": f"{local}@{domain}", "score": int(50 + (h >> 8) % 50)}


def verdict_of(email: str) -> str:
    """The verifier's verdict for ``email``: valid seven times in ten."""
    h = _digest("verify", email.lower()) % 10
    return "valid" if h < 7 else ("catchall" if h < 8 else "invalid")


class Sandbox:
    """The ASGI application and its state."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.traffic = Traffic()
        self.random = random.Random(config.seed)
        self.app = Starlette(
            routes=[
                Route("/places/search", self.places),
                Route("/finder/domain-search", self.finder),
                Route("/verifier/check", self.verifier),
                Route("/_stats", self.stats),
                Route("/_reset", self.reset, methods=["POST"]),
            ]
        )

    async def _misbehave(self, provider: str, request: Request) -> Response | None:
        """Count the request, wait the latency, maybe fail it; ``None`` to answer it."""
        self.traffic.arrivals[provider].append(time.time())
        if not request.headers.get("X-Api-Key"):
            return JSONResponse({"error": "missing X-Api-Key"}, status_code=401)
        if self.config.latency_ms:
            await asyncio.sleep(self.config.latency_ms / 1000)
        roll = self.random.random()
        if roll < self.config.rate_429:
            return JSONResponse(
                {"error": "rate limited"},
                status_code=429,
                headers={"Retry-After": f"{self.config.retry_after:g}"},
            )
        if roll < self.config.rate_429 + self.config.error_rate:
            return JSONResponse({"error": "temporarily unavailable"}, status_code=503)
        return None

    async def places(self, request: Request) -> Response:
        """Text search, 20 businesses a page, a ``next_page_token`` until the fifth."""
        failed = await self._misbehave("places", request)
        if failed:
            return failed
        query = request.query_params.get("query", "")
        token = request.query_params.get("pageToken")
        page = 0
        if token:
            try:
                key, number = token.split(":")
                page = int(number)
            except ValueError:
                return JSONResponse({"error": "bad pageToken"}, status_code=400)
            if key != f"{_digest('token', query) % 10**8}":
                return JSONResponse({"error": "pageToken of another query"}, status_code=400)
        start = page * PAGE_SIZE
        results = [business(query, i) for i in range(start, min(start + PAGE_SIZE, MAX_RESULTS))]
        more = start + PAGE_SIZE < MAX_RESULTS
        return self.traffic.bill("places", f"{query}#{page}", request, {
            "results": results,
            "next_page_token": f"{_digest('token', query) % 10**8}:{page + 1}" if more else None,
        })  # fmt: skip

    async def finder(self, request: Request) -> Response:
        """The contact email of a domain (or ``email: null``)."""
        failed = await self._misbehave("finder", request)
        if failed:
            return failed
        domain = request.query_params.get("domain", "")
        if not domain:
            return JSONResponse({"error": "domain is required"}, status_code=400)
        return self.traffic.bill("finder", domain, request, {"data": email_of(domain)})

    async def verifier(self, request: Request) -> Response:
        """``valid`` / ``invalid`` / ``catchall`` for an email."""
        failed = await self._misbehave("verifier", request)
        if failed:
            return failed
        email = request.query_params.get("email", "")
        if "@" not in email:
            return JSONResponse({"error": "email is required"}, status_code=400)
        body = {"email": email, "result": verdict_of(email)}
        return self.traffic.bill("verifier", email, request, body)

    async def stats(self, request: Request) -> Response:
        """Requests, peak per second and billed calls, per provider."""
        return JSONResponse(self.traffic.report())

    async def reset(self, request: Request) -> Response:
        """Forget the traffic seen so far."""
        self.traffic = Traffic()
        return JSONResponse({"reset": True})


def main(argv: list[str] | None = None) -> None:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m prospecting.sandbox",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--rate-429", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    for name in ("error_rate", "rate_429"):
        if not 0 <= getattr(args, name) <= 1:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1")
    config = SandboxConfig(args.latency_ms, args.error_rate, args.rate_429, args.retry_after,
                           args.seed)  # fmt: skip
    print(f"prospecting sandbox on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(Sandbox(config).app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
