"""The principals of verified keys are remembered per process, so a request can send its key
check together with its own statements; the check still runs in the database on every
request, so a revoked key stops at its very next request (docs/security.md)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import psycopg
import pytest
from pydantic import ValidationError

from nightcrew import App, JobContext
from nightcrew.http import create_app
from nightcrew.http.session import Principal, principal_cache
from nightcrew.keys import create_key, hash_key, revoke_key
from tests.http.conftest import Server


def test_a_revoked_key_is_refused_at_its_next_request_though_this_process_knew_it(
    srv: Server,
) -> None:
    with srv.app.pool().connection() as conn:
        user, user_secret = create_key(conn, "carol", actor="test")
        admin, admin_secret = create_key(conn, "dora", admin=True, actor="test")
    cache = principal_cache(srv.app)
    for secret in (user_secret, admin_secret):
        with srv.client(headers={"Authorization": f"Bearer {secret}"}) as client:
            assert client.post("/api/jobs", json={"type": "demo.echo"}).status_code == 202
        assert cache.get(hash_key(secret)) is not None  # known: the next check goes with the insert
    with srv.app.pool().connection() as conn:
        revoke_key(conn, str(user.id), actor="test")
        revoke_key(conn, str(admin.id), actor="test")
    bodies = [
        {"type": "demo.echo"},  # one round trip
        {"type": "demo.echo", "dedupe_key": "k"},  # the step-by-step path
        {"type": "no.such.type"},  # refused in Python before the database answered
        {"type": "demo.echo", "queue": "nightcrew"},  # ditto, for a user
    ]
    for secret in (user_secret, admin_secret):
        with srv.client(headers={"Authorization": f"Bearer {secret}"}) as client:
            for body in bodies:
                answer = client.post("/api/jobs", json=body)
                assert answer.status_code == 401, (body, answer.text)
                assert "known" not in answer.text  # no type list for a revoked admin
            assert client.get("/api/jobs").status_code == 401
        assert cache.get(hash_key(secret)) is None
    owners = srv.sql("SELECT user_id FROM nightcrew.jobs ORDER BY user_id")
    assert owners == [("carol",), ("dora",)]  # the two jobs from before the revocation


def test_only_keys_the_database_accepted_are_remembered(srv: Server) -> None:
    cache = principal_cache(srv.app)
    before = len(cache)
    with srv.client(headers={"Authorization": "Bearer nck_unknown"}) as client:
        for n in range(20):
            body = {"type": "demo.echo", "payload": {"n": n}}
            assert client.post("/api/jobs", json=body).status_code == 401
    assert len(cache) == before
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]


def test_a_one_round_trip_enqueue_acts_as_its_user_and_wakes_the_workers(
    srv: Server,
) -> None:
    with srv.client("alice") as alice:
        assert alice.get("/api/jobs").status_code == 200  # alice's key is now known here
    with psycopg.connect(srv.db_url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_jobs")
        with srv.client("alice") as alice:
            due = alice.post("/api/jobs", json={"type": "demo.echo", "payload": {"a": 1}})
            later = alice.post("/api/jobs", json={"type": "demo.echo", "delay_seconds": 60})
        assert due.status_code == later.status_code == 202
        woken = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
        assert woken == ["http"]  # the due job's queue; the delayed one wakes no one
        assert list(listener.notifies(timeout=0.5)) == []
    job = due.json()
    assert job["user_id"] == "alice" and job["status"] == "pending" and job["payload"] == {"a": 1}
    with srv.client("bob") as bob:
        assert bob.get(f"/api/jobs/{job['id']}").status_code == 404
    with srv.client("alice") as alice:
        assert alice.get(f"/api/jobs/{job['id']}").json() == job  # the same shape as a read
    stored = srv.sql("SELECT user_id, payload FROM nightcrew.jobs WHERE id = %s", (job["id"],))
    assert stored == [("alice", {"a": 1})]


def test_a_bad_value_in_a_one_round_trip_enqueue_is_422_and_the_connection_stays_usable(
    srv: Server,
) -> None:
    with srv.client("alice") as alice:
        assert alice.get("/api/jobs").status_code == 200
        raw = json.dumps({"type": "demo.echo", "payload": {"text": "a\u0000b"}})
        headers = {"Content-Type": "application/json"}
        for _ in range(3):  # more than once: every pooled connection came back clean
            answer = alice.post("/api/jobs", content=raw, headers=headers)
            assert answer.status_code == 422, answer.text
            assert alice.post("/api/jobs", json={"type": "demo.echo"}).status_code == 202
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(3,)]


def test_concurrent_one_round_trip_enqueues_each_get_their_own_job(srv: Server) -> None:
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with srv.aclient("alice") as alice, srv.aclient("bob") as bob:
            calls = [(alice if n % 2 else bob).post("/api/jobs", json={"type": "demo.echo",
                     "payload": {"n": n}}) for n in range(40)]  # fmt: skip
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [202] * 40
    for n, answer in enumerate(answers):
        job = answer.json()
        assert job["payload"] == {"n": n} and job["user_id"] == ("alice" if n % 2 else "bob")
    assert srv.sql("SELECT count(DISTINCT id) FROM nightcrew.jobs") == [(40,)]


def test_the_cache_is_bounded_by_the_setting_and_drops_the_least_recently_used(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIGHTCREW_HTTP_KEY_CACHE_SIZE", "2")
    app = App(db_url, migrate_on_start=False)
    try:
        cache = principal_cache(app)
        assert cache.size == 2
        first, second, third = (Principal(f"u{n}", False, uuid.uuid4()) for n in range(3))
        cache.put(b"first", first)
        cache.put(b"second", second)
        assert cache.get(b"first") == first  # used: "second" is now the least recent
        cache.put(b"third", third)
        assert len(cache) == 2
        assert cache.get(b"second") is None
        assert cache.get(b"first") == first and cache.get(b"third") == third
    finally:
        app.close()
    with pytest.raises(ValidationError, match="http_key_cache_size"):
        App(db_url, migrate_on_start=False, http_key_cache_size=-1)


async def test_a_cache_of_size_zero_remembers_no_key_and_every_request_still_works(
    db_url: str,
) -> None:
    app = App(db_url, migrate_on_start=False, http_key_cache_size=0)
    app.job("cache.echo")(_echo)
    try:
        with app.pool().connection() as conn:
            _, secret = create_key(conn, "erin", actor="test")
        transport = httpx.ASGITransport(app=create_app(app))
        headers = {"Authorization": f"Bearer {secret}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as client:
            for n in range(3):
                answer = await client.post(
                    "/api/jobs", json={"type": "cache.echo", "payload": {"n": n}}
                )
                assert answer.status_code == 202, answer.text
                assert answer.json()["user_id"] == "erin"
            assert (await client.get("/api/jobs")).status_code == 200
        assert len(principal_cache(app)) == 0
    finally:
        await app.aclose()


async def _echo(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return payload
