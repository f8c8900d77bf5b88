"""Signed webhooks: a JSON POST whose body and timestamp are signed with HMAC-SHA256.

Headers: ``X-Nightcrew-Timestamp: <unix seconds>`` and
``X-Nightcrew-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``,
plus ``X-Nightcrew-Event`` (the event type) and ``X-Nightcrew-Delivery`` (the event key,
the same on every retry: receivers dedupe on it). Receivers verify with :func:`verify`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError
from nightcrew.notify.spec import host_allowed

SIGNATURE_HEADER = "X-Nightcrew-Signature"
TIMESTAMP_HEADER = "X-Nightcrew-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300
_USER_AGENT = "nightcrew-webhooks/1"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Whether a received webhook is authentic and fresh (for receivers written in Python).

    Never raises on what the sender controls: a malformed, absurd or non-ASCII timestamp or
    signature is simply not authentic.
    """
    if not timestamp or not signature or not _plausible_timestamp(timestamp):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False
    expected = sign(secret, int(timestamp), body).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


def _plausible_timestamp(timestamp: str) -> bool:
    """Unix seconds in ASCII digits, short enough to be a real time (at most 12 digits:
    beyond the year 33000), so converting and comparing it can't overflow."""
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a hop: following it would re-send the body unsigned
    for the new target, or silently turn the POST into a GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return int(exc.code)


async def post_webhook(
    url: str,
    body: bytes,
    *,
    secret: str | None,
    event: str,
    delivery: str,
    timeout: float,
    allowlist: Sequence[str] = (),
) -> int:
    """POST ``body`` to ``url`` signed with ``secret``; return the 2xx status code.

    Raises :class:`DeliveryError` for network errors and non-2xx answers (retried) and
    :class:`PermanentDeliveryError` when no secret is set or the host is not allowed.
    """
    if not secret:
        raise PermanentDeliveryError(
            "no webhook secret configured (set NIGHTCREW_WEBHOOK_SECRET): unsigned webhooks "
            "are not sent"
        )
    if not host_allowed(url, allowlist):
        raise PermanentDeliveryError(f"webhook host of {url!r} is not in webhook_allowlist")
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": _USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "X-Nightcrew-Event": event,
        "X-Nightcrew-Delivery": delivery,
    }
    try:
        status = await asyncio.to_thread(_post, url, body, headers, timeout)
    except (OSError, ValueError) as exc:
        raise DeliveryError(f"POST {url}: {exc}") from None
    if not 200 <= status < 300:
        raise DeliveryError(f"POST {url} answered {status}", status_code=status)
    return status
