"""Dashboard sessions: an API key kept in an HttpOnly cookie, and CSRF tokens derived from it.

The cookie holds the key itself, so every page authenticates exactly like an API request
(revoking the key ends the session on the next click) and no session table or server
memory is needed: any number of server processes serve the same sessions. The CSRF token
is an HMAC of a fixed label under the key: unguessable without the key, checked on every
form POST, and the same in every process.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request

from nightcrew.http.errors import ApiError
from nightcrew.http.session import Session, acting

if TYPE_CHECKING:
    from nightcrew.app import App

COOKIE = "nightcrew_session"
MAX_FORM_BYTES = 64 * 1024


def csrf_token(key: str) -> str:
    """The CSRF token of the session holding ``key``."""
    return hmac.new(key.encode(), b"nightcrew-dashboard-csrf", hashlib.sha256).hexdigest()


def nightcrew_app(request: Request) -> App:
    """The App served by this request's FastAPI application."""
    app: App = request.app.state.nightcrew_app
    return app


def login_redirect(request: Request) -> HTTPException:
    """Send the browser to the login form, coming back to this page afterwards."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return HTTPException(303, "log in first", headers={"Location": f"/login?next={quote(target)}"})


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a path on this site (never another host), else ``default``."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


@asynccontextmanager
async def dashboard_session(request: Request) -> AsyncIterator[Session]:
    """A transaction acting as the logged-in user (row-level security applies);
    redirects to the login form when there is no session or the key is no longer live."""
    key = request.cookies.get(COOKIE)
    if not key:
        raise login_redirect(request)
    try:
        async with acting(nightcrew_app(request), key) as session:
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
    key = request.cookies.get(COOKIE)
    if not key:
        raise login_redirect(request)
    origin = request.headers.get("origin")
    if origin and origin != "null" and origin.rstrip("/") != _own_origin(request):
        raise ApiError(403, "cross-site form refused")
    if not hmac.compare_digest(form.get("csrf", ""), csrf_token(key)):
        raise ApiError(403, "missing or stale CSRF token: reload the page and try again")


def _own_origin(request: Request) -> str:
    host = request.headers.get("host", request.url.netloc)
    return f"{request.url.scheme}://{host}"
