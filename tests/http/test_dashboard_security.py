"""The dashboard's sessions, cookie, CSRF, flash messages and what a page may show, over
httpx against the ASGI app (a real database; uvicorn's own proxy-headers middleware)."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.http.dashboard import auth
from nightcrew.keys import create_key, revoke_key

BREAKOUT = ('</script><base href="http://evil.example/">'
            '<meta http-equiv="refresh" content="0;url=http://evil.example/">')  # fmt: skip
TRACEBACK = ('Traceback (most recent call last):\n  File "/srv/secret/worker.py", line 7\n'
             "RuntimeError: upstream said 503\n")  # fmt: skip


@dataclass
class Site:
    """Two servers over one database: ``dev`` with ``dev_insecure_cookies`` (as the tests
    and ``make demo`` run), ``prod`` without."""

    dev: App
    prod: App
    keys: dict[str, str]

    def sql(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL as the table owner."""
        with psycopg.connect(self.dev.url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def keys(db_url: str) -> dict[str, str]:
    """API keys of alice, bob and an admin (root)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {
            "alice": create_key(conn, "alice", actor="test")[1],
            "bob": create_key(conn, "bob", actor="test")[1],
            "admin": create_key(conn, "root", admin=True, actor="test")[1],
        }


def job_types(app: App) -> App:
    @app.job("demo.noop")
    async def noop(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    @app.job("demo.ranked", priority_range=(0, 10))
    async def ranked(ctx: JobContext, payload: dict[str, Any]) -> None:
        return None

    return app


@pytest.fixture
async def site(db_url: str, keys: dict[str, str]) -> AsyncIterator[Site]:
    """Fresh Apps per test (their async pools belong to the test's event loop)."""
    options: dict[str, Any] = {"migrate_on_start": False, "pool_max_size": 4}
    dev = job_types(App(db_url, dev_insecure_cookies=True, **options))
    prod = job_types(App(db_url, **options))
    yield Site(dev, prod, keys)
    for app in (dev, prod):
        await app.aclose()


def browser(
    app: App | Any, origin: str = "http://127.0.0.1", peer: str = "127.0.0.1"
) -> httpx.AsyncClient:
    """A client of ``app`` (an App, or an ASGI app) at ``origin``, connecting from ``peer``.
    It keeps no cookies of its own: each request names the session it sends."""
    asgi = create_app(app) if isinstance(app, App) else app
    transport = httpx.ASGITransport(app=asgi, client=(peer, 50000), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url=origin, follow_redirects=False)


def with_session(sid: str | None) -> dict[str, str]:
    return {"Cookie": f"{auth.COOKIE}={sid}"} if sid else {}


async def get(client: httpx.AsyncClient, path: str, sid: str | None) -> httpx.Response:
    client.cookies.clear()
    return await client.get(path, headers=with_session(sid))


async def post(
    client: httpx.AsyncClient,
    path: str,
    sid: str | None,
    form: dict[str, str],
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    client.cookies.clear()
    return await client.post(path, data=form, headers={**with_session(sid), **(headers or {})})


def session_cookie(response: httpx.Response) -> Any:
    """The ``nightcrew_session`` morsel the response sets."""
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return jar[auth.COOKIE]


async def login(client: httpx.AsyncClient, key: str) -> str:
    """Log in through the form; the session id the cookie holds."""
    client.cookies.clear()
    response = await client.post("/login", data={"key": key})
    assert response.status_code == 303, response.text
    return str(session_cookie(response).value)


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "no form with a CSRF token on the page"
    return found[1]


def enqueue(site: Site, user: str, payload: dict[str, Any] | None = None) -> str:
    return str(site.dev.enqueue("demo.noop", payload or {}, user_id=user, delay=3600))


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


# ---- item 10: server-side sessions ---------------------------------------------------------


async def test_the_cookie_holds_a_random_session_id_never_the_api_key(site: Site) -> None:
    async with browser(site.dev) as client:
        client.cookies.clear()
        response = await client.post("/login", data={"key": site.keys["alice"]})
        assert response.status_code == 303
        cookie = session_cookie(response)
        sid = cookie.value
        assert sid != site.keys["alice"] and not sid.startswith("nck_")
        assert len(sid) >= 43  # 32 random bytes
        assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
        assert cookie["max-age"] == str(12 * 3600)  # dashboard_session_hours
        assert (await get(client, "/", sid)).status_code == 200
        # The API key itself is no longer a dashboard credential.
        raw_key = await get(client, "/", site.keys["alice"])
        assert raw_key.status_code == 303 and raw_key.headers["location"].startswith("/login")
    rows = site.sql(
        "SELECT user_id, is_admin, expires_at - created_at = interval '12 hours'"
        " FROM nightcrew.dashboard_sessions WHERE id_hash = %s",
        (sha256(sid),),
    )
    assert rows == [("alice", False, True)]
    stored = site.sql("SELECT count(*) FROM nightcrew.dashboard_sessions WHERE id_hash = %s",
                      (sid.encode(),))  # fmt: skip
    assert stored == [(0,)]  # only the hash is kept


async def test_a_stolen_cookie_stops_working_after_logout(site: Site) -> None:
    job = enqueue(site, "alice")
    async with browser(site.dev) as victim, browser(site.dev) as thief:
        sid = await login(victim, site.keys["alice"])
        assert (await get(thief, "/", sid)).status_code == 200  # the copied cookie works...
        token = csrf_of(await get(victim, "/", sid))
        out = await post(victim, "/logout", sid, {"csrf": token})
        assert out.status_code == 303 and out.headers["location"] == "/login"
        cleared = session_cookie(out)
        assert cleared.value == "" and cleared["max-age"] == "0"
        # ...until the owner logs out: every page, stream and form refuses it.
        page = await get(thief, "/jobs", sid)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        assert (await get(thief, "/events", sid)).status_code == 401
        assert (await get(thief, f"/jobs/{job}/events", sid)).status_code == 401
        cancel = await post(thief, f"/jobs/{job}/cancel", sid, {"csrf": token})
        assert cancel.status_code == 303 and cancel.headers["location"].startswith("/login")
    assert site.sql("SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job,)) == [
        ("pending",)
    ]
    assert site.sql("SELECT revoked_at IS NOT NULL FROM nightcrew.dashboard_sessions"
                    " WHERE id_hash = %s", (sha256(sid),)) == [(True,)]  # fmt: skip


async def test_an_expired_session_is_refused(db_url: str, site: Site) -> None:
    short = App(db_url, migrate_on_start=False, dev_insecure_cookies=True,
                dashboard_session_hours=0.5)  # fmt: skip
    try:
        async with browser(short) as client:
            client.cookies.clear()
            response = await client.post("/login", data={"key": site.keys["bob"]})
            assert session_cookie(response)["max-age"] == "1800"
            sid = session_cookie(response).value
            assert (await get(client, "/", sid)).status_code == 200
            site.sql("UPDATE nightcrew.dashboard_sessions SET expires_at = now()"
                     " WHERE id_hash = %s", (sha256(sid),))  # fmt: skip
            page = await get(client, "/", sid)
            assert page.status_code == 303 and page.headers["location"].startswith("/login")
            assert (await get(client, "/events", sid)).status_code == 401
    finally:
        await short.aclose()


async def test_revoking_the_api_key_ends_its_dashboard_sessions(site: Site) -> None:
    with psycopg.connect(site.dev.url, autocommit=True) as conn:
        record, key = create_key(conn, "carol", actor="test")
    async with browser(site.dev) as client:
        sid = await login(client, key)
        assert (await get(client, "/", sid)).status_code == 200
        with psycopg.connect(site.dev.url, autocommit=True) as conn:
            revoke_key(conn, str(record.id), actor="test")
        page = await get(client, "/", sid)
        assert page.status_code == 303 and page.headers["location"].startswith("/login")
        again = await client.post("/login", data={"key": key})
        assert again.status_code == 401  # and the revoked key cannot open a new one


@pytest.mark.parametrize(
    ("dev", "origin", "secure"),
    [
        (False, "http://127.0.0.1", True),  # production: Secure even on loopback
        (False, "https://dash.example", True),
        (True, "http://127.0.0.1", False),  # make demo, the tests
        (True, "http://localhost", False),
        (True, "http://[::1]", False),
        (True, "http://dash.example", True),  # the dev setting never covers another host
        (True, "http://10.1.2.3", True),
        (True, "https://127.0.0.1", True),
    ],
)
async def test_the_cookie_is_secure_except_plain_http_to_loopback_in_development(
    site: Site, dev: bool, origin: str, secure: bool
) -> None:
    async with browser(site.dev if dev else site.prod, origin) as client:
        client.cookies.clear()
        response = await client.post("/login", data={"key": site.keys["bob"]})
        assert response.status_code == 303, response.text
        cookie = session_cookie(response)
        assert bool(cookie["secure"]) is secure
        assert cookie["httponly"] and cookie["samesite"].lower() == "lax"
        token = csrf_of(await get(client, "/", cookie.value))
        out = await post(client, "/logout", cookie.value, {"csrf": token})
        assert bool(session_cookie(out)["secure"]) is secure  # the deletion matches


async def test_forwarded_proto_is_honoured_from_trusted_proxies_only(site: Site) -> None:
    # What `uvicorn --proxy-headers --forwarded-allow-ips 10.0.0.2` runs in front of the app.
    asgi = ProxyHeadersMiddleware(create_app(site.dev), trusted_hosts="10.0.0.2")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9",
                 "Origin": "https://dash.example"}  # fmt: skip
    async with browser(asgi, "http://dash.example", peer="10.0.0.2") as proxy:
        proxy.cookies.clear()  # the TLS-terminating proxy, relaying a browser's https request
        response = await proxy.post("/login", data={"key": site.keys["bob"]}, headers=forwarded)
        assert response.status_code == 303  # the https Origin matches the forwarded scheme
        cookie = session_cookie(response)
        assert cookie["secure"]
        token = csrf_of(await get(proxy, "/", cookie.value))
        out = await post(proxy, "/logout", cookie.value, {"csrf": token}, forwarded)
        assert out.status_code == 303
    async with browser(asgi, "http://dash.example", peer="10.6.6.6") as stranger:
        stranger.cookies.clear()
        response = await stranger.post("/login", data={"key": site.keys["bob"]},
                                       headers=forwarded)  # fmt: skip
        assert response.status_code == 403  # its X-Forwarded-Proto is ignored: still http
        assert response.json()["error"]["message"] == "cross-site login refused"


# ---- item 13: CSRF token, flash messages, tracebacks ----------------------------------------


@pytest.mark.parametrize("token", ["é" * 64, "\u202e", "x\u0000y", "🙂"])
async def test_a_non_ascii_csrf_token_is_403_not_500(site: Site, token: str) -> None:
    job = enqueue(site, "alice")
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["alice"])
        for path in (f"/jobs/{job}/cancel", "/logout", "/dead/retry"):
            response = await post(client, path, sid, {"csrf": token, "ids": "all"})
            assert response.status_code == 403, (path, response.text)
            assert "CSRF token" in response.json()["error"]["message"]
    assert site.sql("SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job,)) == [
        ("pending",)
    ]


async def test_a_link_cannot_put_text_on_the_dashboard(site: Site) -> None:
    job = enqueue(site, "alice")
    lure = "Your session expired: call +1 555 0100 to unlock"
    async with browser(site.dev) as alice, browser(site.dev) as admin:
        root = await login(admin, site.keys["admin"])
        for path in (f"/?msg={quote(lure)}", f"/jobs?msg={quote(lure)}&msg_sig=1.abc",
                     f"/dead?msg={quote(lure)}&msg_sig=99999999999.{'0' * 64}"):  # fmt: skip
            page = await get(admin, path, root)
            assert page.status_code == 200
            assert "call +1 555" not in page.text and 'class="flash"' not in page.text
        # The dashboard's own messages still show, to the session they were made for.
        sid = await login(alice, site.keys["alice"])
        token = csrf_of(await get(alice, f"/jobs/{job}", sid))
        done = await post(alice, f"/jobs/{job}/cancel", sid, {"csrf": token})
        back = done.headers["location"]
        assert back.startswith(f"/jobs/{job}?msg=") and "msg_sig=" in back
        shown = await get(alice, back, sid)
        assert '<p class="flash" role="status">1 job(s) cancelled</p>' in shown.text
        # Alice's link shows nothing on the admin's page, nor does it with other text.
        assert 'class="flash"' not in (await get(admin, back, root)).text
        forged = back.replace("1%20job%28s%29%20cancelled", quote(lure))
        assert forged != back and "call +1 555" not in (await get(alice, forged, sid)).text
        # Short-lived: a signature whose time has passed shows nothing.
        stale = int(time.time()) - 1
        old = f"/?msg=hello&msg_sig={stale}.{auth._flash_signature(sid, 'hello', stale)}"
        assert 'class="flash"' not in (await get(alice, old, sid)).text


async def test_owners_see_error_messages_and_admins_the_tracebacks(site: Site) -> None:
    job = enqueue(site, "alice")
    error = {"attempt": 1, "type": "RuntimeError", "message": "upstream said 503",
             "traceback": TRACEBACK, "at": "2026-12-01T10:00:00+00:00"}  # fmt: skip
    site.sql("UPDATE nightcrew.jobs SET status = 'failed', attempts = 1, completed_at = now(),"
             " error = 'upstream said 503', errors = jsonb_build_array(%s::jsonb)"
             " WHERE id = %s", (json.dumps(error), job))  # fmt: skip
    async with browser(site.dev) as alice, browser(site.dev) as admin:
        own = await get(alice, f"/jobs/{job}", await login(alice, site.keys["alice"]))
        seen = await get(admin, f"/jobs/{job}", await login(admin, site.keys["admin"]))
        bearer = {"Authorization": f"Bearer {site.keys['alice']}"}
        api = await alice.get(f"/api/jobs/{job}", headers=bearer)
    assert own.status_code == seen.status_code == api.status_code == 200
    assert "<strong>RuntimeError</strong>: upstream said 503" in own.text
    assert "/srv/secret/worker.py" not in own.text and "Traceback" not in own.text
    assert "<strong>RuntimeError</strong>: upstream said 503" in seen.text
    assert '<pre class="traceback">Traceback (most recent call last):' in seen.text
    assert "/srv/secret/worker.py" in seen.text
    # The API's job JSON carries the message only, never a traceback.
    assert api.json()["error"] == "upstream said 503"
    assert "Traceback" not in api.text and "/srv/secret" not in api.text


# ---- item 4: JSON embedded in pages ---------------------------------------------------------


def json_block(html: str, block_id: str) -> Any:
    """The parsed content of ``<script type="application/json" id=block_id>``, as a
    browser's parser delimits it (at the first ``</script``)."""
    found = re.search(rf'<script type="application/json" id="{block_id}">(.*?)</script',
                      html, re.DOTALL | re.IGNORECASE)  # fmt: skip
    assert found, f"no JSON block {block_id}"
    return json.loads(found[1])


async def test_a_payload_cannot_break_out_of_the_job_pages_json(site: Site) -> None:
    payload = {"note": BREAKOUT, "amp": "a & b", "quote": "it's"}
    job = enqueue(site, "alice", payload)
    async with browser(site.dev) as admin:
        page = await get(admin, f"/jobs/{job}", await login(admin, site.keys["admin"]))
        overview = await get(admin, "/", await login(admin, site.keys["admin"]))
    assert page.status_code == 200
    assert "<base" not in page.text and "<meta http-equiv" not in page.text
    assert json_block(page.text, "job-data")["payload"] == payload
    assert isinstance(json_block(overview.text, "hourly-data")["labels"], list)


# ---- a type's priority_range binds the dashboard as it binds the API --------------------------


async def test_the_dashboard_priority_form_keeps_a_types_priority_range(site: Site) -> None:
    job = str(site.dev.enqueue("demo.ranked", {}, user_id="alice", delay=3600))
    async with browser(site.dev) as client:
        sid = await login(client, site.keys["alice"])
        token = csrf_of(await get(client, f"/jobs/{job}", sid))
        refused = await post(client, f"/jobs/{job}/priority", sid,
                             {"csrf": token, "priority": "500"})  # fmt: skip
        allowed = await post(client, f"/jobs/{job}/priority", sid,
                             {"csrf": token, "priority": "7"})  # fmt: skip
        admin = await login(client, site.keys["admin"])
        admin_token = csrf_of(await get(client, f"/jobs/{job}", admin))
        await post(client, f"/jobs/{job}/priority", admin,
                   {"csrf": admin_token, "priority": "900"})  # fmt: skip
    assert refused.status_code == 303 and allowed.status_code == 303
    assert site.sql("SELECT priority FROM nightcrew.jobs WHERE id = %s", (job,)) == [(900,)]
    history = site.sql(
        "SELECT after->>'priority' FROM nightcrew.audit_log WHERE target = %s ORDER BY id", (job,)
    )
    assert [row[0] for row in history] == ["7", "900"]  # 500 was refused, never written
