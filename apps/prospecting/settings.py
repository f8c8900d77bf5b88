"""The prospecting settings, read from the environment (see docs/prospecting.md):
each provider's base URL, key and rate limit, and the price list."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

PROVIDERS = ("places", "finder", "verifier")
"""Place search (discovery), email finder (by domain), email verifier."""

DEFAULT_URL = "http://127.0.0.1:8765"
DEFAULT_RATE = "5/s"
DEFAULT_PRICES = {"places": "0.032", "finder": "0.10", "verifier": "0.008"}
"""Dollars per paid call (list prices of the kind of providers this stands in for)."""

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_PER = {"s": 1.0, "m": 60.0, "h": 3600.0}


class SettingsError(ValueError):
    """A prospecting setting is malformed (the message names it)."""


def parse_rate(name: str, text: str) -> float:
    """Calls per second of a rate such as ``5/s``, ``120/m`` or ``1000/h``."""
    match = _RATE.match(text)
    if not match or float(match.group(1)) <= 0:
        raise SettingsError(f"{name}: expected a rate such as '5/s' or '120/m', got {text!r}")
    return float(match.group(1)) / _PER[match.group(2)]


def parse_prices(text: str | None) -> dict[str, Decimal]:
    """The price list: JSON ``{"places": 0.032, ...}`` in dollars per call; providers not
    named keep their default price."""
    prices = {name: Decimal(value) for name, value in DEFAULT_PRICES.items()}
    if not text:
        return prices
    try:
        given = json.loads(text)
    except ValueError:
        raise SettingsError("PROSPECTING_PRICES: not valid JSON") from None
    if not isinstance(given, dict):
        raise SettingsError("PROSPECTING_PRICES: expected a JSON object of provider: dollars")
    for name, value in given.items():
        if name not in PROVIDERS:
            raise SettingsError(f"PROSPECTING_PRICES: unknown provider {name!r}")
        try:
            price = Decimal(str(value))
        except InvalidOperation:
            raise SettingsError(f"PROSPECTING_PRICES: {name}: not a number") from None
        if not price.is_finite() or price < 0:
            raise SettingsError(f"PROSPECTING_PRICES: {name}: must be >= 0")
        prices[name] = price
    return prices


def parse_headroom(text: str) -> float:
    """``PROSPECTING_RATE_HEADROOM``: the share of each provider's rate left unused (0-0.5)."""
    try:
        value = float(text)
    except ValueError:
        raise SettingsError("PROSPECTING_RATE_HEADROOM: not a number") from None
    if not 0 <= value <= 0.5:
        raise SettingsError("PROSPECTING_RATE_HEADROOM: must be between 0 and 0.5")
    return value


@dataclass(frozen=True)
class Provider:
    """One provider's endpoint: base URL, API key, rate (as written and per second),
    price per call."""

    name: str
    url: str
    key: str
    rate: str
    per_second: float
    price: Decimal
    headroom: float = 0.05

    @property
    def limit_rate(self) -> str:
        """The rate nightcrew's keyed limit enforces: the provider's less the headroom,
        as a whole number of calls per hour (so that a few milliseconds of network jitter
        between our clock and the provider's never shows it more than its rate in a
        second: calls are spaced 1/rate apart, and a late first call with an early sixth
        would otherwise both land in the same second)."""
        per_hour = math.floor(self.per_second * 3600 * (1 - self.headroom))
        return f"{max(per_hour, 1)}/h"


@dataclass(frozen=True)
class ProspectingSettings:
    """Everything the providers need, per provider name."""

    providers: dict[str, Provider]
    timeout: float = 10.0
    """Seconds before one HTTP request to a provider gives up (then retried)."""

    def __getitem__(self, name: str) -> Provider:
        return self.providers[name]


def load_settings(environ: Mapping[str, str] | None = None) -> ProspectingSettings:
    """Read ``PROSPECTING_*`` from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    prices = parse_prices(env.get("PROSPECTING_PRICES"))
    headroom = parse_headroom(env.get("PROSPECTING_RATE_HEADROOM", "0.05"))
    providers = {}
    for name in PROVIDERS:
        upper = name.upper()
        rate = env.get(f"PROSPECTING_{upper}_RATE", DEFAULT_RATE)
        providers[name] = Provider(
            name=name,
            url=env.get(f"PROSPECTING_{upper}_URL", f"{DEFAULT_URL}/{name}").rstrip("/"),
            key=env.get(f"PROSPECTING_{upper}_KEY", "sandbox"),
            rate=rate.strip(),
            per_second=parse_rate(f"PROSPECTING_{upper}_RATE", rate),
            price=prices[name],
            headroom=headroom,
        )
    timeout = float(env.get("PROSPECTING_TIMEOUT", "10"))
    return ProspectingSettings(providers, timeout)


SettingsSource = Callable[[], ProspectingSettings]
"""Gives the settings in force (read when a job runs or a request comes, not at install)."""
