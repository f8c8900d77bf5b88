"""Dashboard sessions, CSRF tokens and flash messages.

Logging in with an API key opens a server-side session: the ``nightcrew_session`` cookie
holds a random id (``secrets.token_urlsafe``), the database keeps only its sha256 with the
user, the admin flag and an expiry (``dashboard_session_hours``). Every request looks the
session up, so logout, expiry and revoking the API key end it at once, in every server
process. The cookie is ``HttpOnly``, ``SameSite=Lax`` and ``Secure``; only the development
setting ``dev_insecure_cookies`` drops ``Secure``, and only on plain http to a loopback
host. The scheme and host come from the request as uvicorn's proxy-headers middleware
rewrites it for trusted proxies (``--forwarded-allow-ips``), never from headers read here.

The CSRF token and the flash messages' signatures are HMACs under the session id: secret
to the browser that holds the cookie, the same in every process, new at every login.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request
from fastapi.responses import Response

from nightcrew.http.errors import ApiError
from nightcrew.http.session import Session, acting_for_dashboard
from nightcrew.keys import hash_key
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

COOKIE = "nightcrew_session"
MAX_FORM_BYTES = 64 * 1024
FLASH_SECONDS = 120
"""How long a flash message's link shows it (long enough for the redirect, no more)."""
LOOPBACK_NAMES = frozenset({"localhost"})


def csrf_token(session_id: str) -> str:
    """The CSRF token of the dashboard session ``session_id``."""
    return _mac(session_id, b"nightcrew-dashboard-csrf")


def _mac(session_id: str, message: bytes) -> str:
    return hmac.new(session_id.encode(), message, hashlib.sha256).hexdigest()


def nightcrew_app(request: Request) -> App:
    """The App served by this request's FastAPI application."""
    app: App = request.app.state.nightcrew_app
    return app


def session_id(request: Request) -> str | None:
    """The session id the browser sent (not yet checked), if any."""
    return request.cookies.get(COOKIE) or None


def login_redirect(request: Request) -> HTTPException:
    """Send the browser to the login form, coming back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, "log in first", headers={"Location": f"/login?next={quote(target)}"})


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site (never another host), else ``default``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


async def open_session(app: App, key: str) -> str | None:
    """Log in with ``key``: the new session's id, or ``None`` for an unknown or revoked key."""
    new_id = secrets.token_urlsafe(32)
    params = {
        "key_hash": hash_key(key),
        "id_hash": hash_key(new_id),
        "seconds": app.settings.dashboard_session_hours * 3600,
    }
    pool = await app.apool()
    async with pool.connection() as conn:
        cur = await conn.execute(query("dash_session_create"), params)
        return new_id if await cur.fetchone() else None


async def end_session(app: App, session_id: str) -> None:
    """Log out: the session stops working everywhere, whoever holds its cookie."""
    pool = await app.apool()
    async with pool.connection() as conn:
        await conn.execute(query("dash_session_revoke"), {"id_hash": hash_key(session_id)})


def cookie_must_be_secure(request: Request) -> bool:
    """Always, except plain http to a loopback host when ``dev_insecure_cookies`` is on."""
    if request.url.scheme == "https" or not nightcrew_app(request).settings.dev_insecure_cookies:
        return True
    return not is_loopback(request.url.hostname)


def is_loopback(host: str | None) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``."""
    if not host:
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def set_session_cookie(response: Response, request: Request, new_id: str) -> None:
    """Give the browser its session cookie (it lasts as long as the session)."""
    hours = nightcrew_app(request).settings.dashboard_session_hours
    response.set_cookie(
        COOKIE, new_id, max_age=int(hours * 3600), httponly=True, samesite="lax",
        secure=cookie_must_be_secure(request), path="/",
    )  # fmt: skip


def clear_session_cookie(response: Response, request: Request) -> None:
    """Tell the browser to forget its session cookie."""
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                           secure=cookie_must_be_secure(request))  # fmt: skip


@asynccontextmanager
async def dashboard_session(request: Request) -> AsyncIterator[Session]:
    """A transaction acting as the logged-in user (row-level security applies);
    redirects to the login form when there is no live session."""
    try:
        async with acting_for_dashboard(nightcrew_app(request), session_id(request)) as session:
            yield session
    except ApiError as exc:
        if exc.status == 401:
            raise login_redirect(request) from None
        raise


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (last value of each field); 413 past 64 KiB."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "form too large")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def check_csrf(request: Request, form: Mapping[str, str]) -> None:
    """Refuse (403) a form not posted from a dashboard page of this session: the token must
    match, and a cross-site ``Origin`` header is refused outright."""
    sid = session_id(request)
    if not sid:
        raise login_redirect(request)
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != _own_origin(request):
        raise ApiError(403, "cross-site form refused")
    # As bytes: compare_digest refuses non-ASCII text with a TypeError (a 500).
    sent = form.get("csrf", "").encode()
    if not hmac.compare_digest(sent, csrf_token(sid).encode()):
        raise ApiError(403, "missing or stale CSRF token: reload the page and try again")


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", request.url.netloc)
    return f"{request.url.scheme}://{host}"


def flash_url(request: Request, target: str, message: str) -> str:
    """``target`` with ``message`` to show there once: signed for this session and only
    for ``FLASH_SECONDS``, so a link made by anyone else shows nothing."""
    sid = session_id(request) or ""
    expires = int(time.time()) + FLASH_SECONDS
    glue = "&" if "?" in target else "?"
    signature = _flash_signature(sid, message, expires)
    return f"{target}{glue}msg={quote(message)}&msg_sig={expires}.{signature}"


def verified_flash(request: Request) -> str | None:
    """The page's ``msg`` if its ``msg_sig`` was made for this session and is still fresh."""
    message, sig = request.query_params.get("msg"), request.query_params.get("msg_sig", "")
    sid = session_id(request)
    expires, _, signature = sig.partition(".")
    if not (message and sid and expires.isascii() and expires.isdigit()):
        return None
    if int(expires) < time.time():
        return None
    expected = _flash_signature(sid, message, int(expires))
    return message if hmac.compare_digest(signature.encode(), expected.encode()) else None


def _flash_signature(sid: str, message: str, expires: int) -> str:
    return _mac(sid, f"nightcrew-dashboard-flash\0{expires}\0{message}".encode())
