"""Signed webhooks: a JSON POST whose body and timestamp are signed with HMAC-SHA256.

Headers: ``X-Nightcrew-Timestamp: <unix seconds>`` and
``X-Nightcrew-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``,
plus ``X-Nightcrew-Event`` (the event type) and ``X-Nightcrew-Delivery`` (the event key,
the same on every retry: receivers dedupe on it). Receivers verify with :func:`verify`.

The secret of a job that has a ``user_id`` is that user's own (:func:`user_secret`); other
events (alerts, jobs without a user) are signed with ``webhook_secret`` itself. The POST
goes only to public addresses (:mod:`nightcrew.notify.addresses`), over a connection of its
own made with asyncio, so the caller's deadline bounds the whole exchange.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from nightcrew.notify.addresses import resolve_checked
from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError

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


def user_secret(master: str, user_id: str) -> str:
    """The signing secret of webhooks about ``user_id``'s jobs, derived from the master
    secret (``webhook_secret``): one user can't produce or replay a body that another
    user's receiver accepts, and no secret needs storing. ``GET /api/notifications/
    webhook-secret`` gives each user their own."""
    mac = hmac.new(master.encode(), b"nightcrew-webhook-user:" + user_id.encode(), hashlib.sha256)
    return f"whsec_{mac.hexdigest()}"


async def post_webhook(
    url: str,
    body: bytes,
    *,
    secret: str | None,
    event: str,
    delivery: str,
    allow_private: bool = False,
) -> int:
    """POST ``body`` to ``url`` signed with ``secret``; return the 2xx status code.

    Connects only to addresses :func:`~nightcrew.notify.addresses.resolve_checked`
    allows. Has no deadline of its own: the caller bounds the whole exchange. Raises
    :class:`DeliveryError` for network errors and non-2xx answers (retried) and
    :class:`PermanentDeliveryError` when no secret is set or the address is refused.
    """
    if not secret:
        raise PermanentDeliveryError(
            "no webhook secret configured (set NIGHTCREW_WEBHOOK_SECRET): unsigned webhooks "
            "are not sent"
        )
    target = _Target.of(url)
    addresses = await resolve_checked(target.host, target.port, allow_private=allow_private)
    timestamp = int(time.time())
    headers = {
        "Host": target.host_header,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "User-Agent": _USER_AGENT,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "X-Nightcrew-Event": event,
        "X-Nightcrew-Delivery": delivery,
        "Connection": "close",
    }
    request = _request_bytes(target.path, headers, body)
    try:
        status = await _exchange(target, addresses, request)
    except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise DeliveryError(f"POST {url}: {exc or type(exc).__name__}") from None
    if not 200 <= status < 300:
        # Redirects too: following one would send the signed body somewhere unchecked.
        raise DeliveryError(f"POST {url} answered {status}", status_code=status)
    return status


@dataclass(frozen=True)
class _Target:
    """Where a webhook URL points: host to resolve, port, TLS or not, request target."""

    host: str
    port: int
    tls: bool
    path: str
    host_header: str

    @classmethod
    def of(cls, url: str) -> _Target:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise PermanentDeliveryError(f"not a valid webhook URL: {url!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PermanentDeliveryError(f"not an http(s) webhook URL: {url!r}")
        tls = parts.scheme == "https"
        default_port = 443 if tls else 80
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        if port is not None and port != default_port:
            shown = f"{shown}:{port}"
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Percent-encode what may not appear raw in a request line (spaces, controls).
        path = quote(path, safe="/?&=:@!$'()*+,;%~")
        return cls(host, port or default_port, tls, path, shown)


def _request_bytes(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + "\r\n").encode("latin-1", "replace") + body


async def _exchange(target: _Target, addresses: list[str], request: bytes) -> int:
    """Send ``request`` to the first of ``addresses`` that accepts a connection (TLS checks
    the certificate against the URL's host name); return the answer's status code."""
    context = ssl.create_default_context() if target.tls else None
    failure: OSError | None = None
    for address in addresses:
        try:
            reader, writer = await asyncio.open_connection(
                address, target.port, ssl=context,
                server_hostname=target.host if context else None,
            )  # fmt: skip
        except OSError as exc:
            failure = exc
            continue
        try:
            writer.write(request)
            await writer.drain()
            return await _read_status(reader)
        finally:
            writer.close()
    raise failure or OSError("no address to connect to")


async def _read_status(reader: asyncio.StreamReader) -> int:
    """The status code of the final answer (informational 1xx answers are skipped)."""
    while True:
        line = await reader.readuntil(b"\r\n")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise ValueError(f"not an HTTP answer: {line[:80]!r}")
        if not 100 <= int(code) < 200:
            return int(code)
        while await reader.readuntil(b"\r\n") != b"\r\n":
            pass  # the headers of the 1xx answer
