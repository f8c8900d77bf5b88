"""Per-user isolation on every route, enforced by row-level security; keys; the audit log."""

from __future__ import annotations

import psycopg
import pytest

from tests.http.conftest import Server


def enqueue(srv: Server, who: str, type: str = "demo.echo") -> str:
    with srv.client(who) as client:
        response = client.post("/api/jobs", json={"type": type})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_no_key_or_a_bad_key_is_401_and_open_routes_need_none(srv: Server) -> None:
    job = enqueue(srv, "alice")
    routes = [("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", f"/api/jobs/{job}"),
              ("GET", f"/api/jobs/{job}/events"), ("POST", f"/api/jobs/{job}/cancel"),
              ("POST", f"/api/jobs/{job}/retry"), ("PATCH", f"/api/jobs/{job}"),
              ("POST", "/api/jobs/bulk"), ("GET", "/api/stats"), ("GET", "/metrics")]  # fmt: skip
    bodies = {"/api/jobs": {"type": "demo.echo"}, "/api/jobs/bulk": {"action": "cancel",
              "ids": [job]}, f"/api/jobs/{job}": {"priority": 1}}  # fmt: skip
    for headers in ({}, {"Authorization": "Bearer nck_not-a-key"}, {"Authorization": "Basic x"}):
        with srv.client(headers=headers) as client:
            for method, path in routes:
                body = bodies.get(path) if method != "GET" else None
                response = client.request(method, path, json=body)
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["code"] == "unauthorized"
    with srv.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/docs").status_code == 200
    assert srv.sql("SELECT status::text FROM nightcrew.jobs") == [("pending",)]


def test_another_users_job_is_404_on_every_route(srv: Server) -> None:
    job = enqueue(srv, "alice")
    with srv.client("bob") as bob:
        answers = [
            bob.get(f"/api/jobs/{job}"), bob.get(f"/api/jobs/{job}/events"),
            bob.post(f"/api/jobs/{job}/cancel"), bob.post(f"/api/jobs/{job}/retry"),
            bob.patch(f"/api/jobs/{job}", json={"priority": 9}),
        ]  # fmt: skip
        listed = bob.get("/api/jobs").json()
        bulk = bob.post("/api/jobs/bulk", json={"action": "cancel", "ids": [job]}).json()
        bulk_filter = bob.post("/api/jobs/bulk", json={"action": "cancel", "filter": {}}).json()
        stats = bob.get("/api/stats").json()
    unknown = "01900000-0000-7000-8000-000000000000"
    with srv.client("alice") as alice:
        reference = alice.get(f"/api/jobs/{unknown}")
    for response in answers:
        assert response.status_code == 404
        assert response.json() == reference.json()  # indistinguishable from no such job
    assert listed == {"items": [], "next_cursor": None}
    assert bulk["count"] == 0 and bulk_filter["count"] == 0
    assert stats["queue_depth"] == 0
    assert srv.sql("SELECT status::text, priority FROM nightcrew.jobs") == [("pending", 0)]
    assert srv.sql("SELECT count(*) FROM nightcrew.audit_log") == [(0,)]


def test_admin_sees_and_manages_everyone(srv: Server) -> None:
    alice_job, bob_job = enqueue(srv, "alice"), enqueue(srv, "bob")
    with srv.client("admin") as admin:
        listed = {j["id"] for j in admin.get("/api/jobs").json()["items"]}
        got = admin.get(f"/api/jobs/{alice_job}")
        bulk = admin.post("/api/jobs/bulk", json={"action": "cancel", "filter": {}}).json()
        stats = admin.get("/api/stats").json()
    assert listed == {alice_job, bob_job}
    assert got.status_code == 200 and got.json()["user_id"] == "alice"
    assert bulk["count"] == 2
    assert stats["last_24h"]["cancelled"] == 2
    with srv.client("alice") as alice:
        assert alice.get("/api/stats").json()["last_24h"]["cancelled"] == 1


def api_role(srv: Server, user: str | None, admin: bool = False) -> psycopg.Connection[object]:
    """A session acting exactly as the API's transactions do, for direct RLS checks."""
    conn = psycopg.connect(srv.db_url, autocommit=True)
    conn.execute("SET ROLE nightcrew_api")
    if user is not None:
        conn.execute("SELECT set_config('nightcrew.user_id', %s, false)", (user,))
    conn.execute("SELECT set_config('nightcrew.is_admin', %s, false)", (str(admin).lower(),))
    return conn


def test_rls_holds_for_queries_without_any_where(srv: Server) -> None:
    enqueue(srv, "alice")
    enqueue(srv, "bob")
    enqueue(srv, "bob")
    srv.app.enqueue("demo.echo", {})  # no user: visible to admins only
    with api_role(srv, "alice") as conn:
        assert conn.execute("SELECT user_id FROM nightcrew.jobs").fetchall() == [("alice",)]
        with conn.transaction(force_rollback=True):
            assert conn.execute("UPDATE nightcrew.jobs SET priority = 5").rowcount == 1
        refused = [
            "SELECT count(*) FROM nightcrew.api_keys",
            "DELETE FROM nightcrew.jobs",
            "INSERT INTO nightcrew.jobs (id, type, user_id) VALUES (gen_random_uuid(), 'x', 'bob')",
            "UPDATE nightcrew.jobs SET user_id = 'bob'",  # cannot hand a job to someone else
            "INSERT INTO nightcrew.audit_log (actor, action) VALUES ('bob', 'forged')",
        ]
        for statement in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with api_role(srv, None) as conn:  # no acting user set: nothing at all
        assert conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone() == (0,)
    with api_role(srv, "root", admin=True) as conn:
        assert conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone() == (4,)
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs WHERE priority = 5") == [(0,)]
    assert srv.sql("SELECT user_id FROM nightcrew.jobs ORDER BY user_id") == [
        ("alice",), ("bob",), ("bob",), (None,)]  # fmt: skip


def test_management_actions_are_audited(srv: Server) -> None:
    job = enqueue(srv, "alice")
    with srv.client("alice") as alice:
        alice.patch(f"/api/jobs/{job}", json={"priority": 3})
        alice.post(f"/api/jobs/{job}/cancel")
        alice.post(f"/api/jobs/{job}/retry")
    with srv.client("admin") as admin:
        admin.post("/api/jobs/bulk", json={"action": "cancel", "ids": [job]})
    rows = srv.sql("SELECT actor, action, target, before, after FROM nightcrew.audit_log "
                   "ORDER BY id")  # fmt: skip
    assert rows == [
        ("alice", "job.priority", job, {"priority": 0}, {"priority": 3}),
        ("alice", "job.cancel", job, {"status": "pending"},
         {"status": "cancelled", "cancel_requested": False}),
        ("alice", "job.retry", job, {"status": "cancelled", "attempts": 0},
         {"status": "pending", "attempts": 0}),
        ("root", "job.cancel", job, {"status": "pending"},
         {"status": "cancelled", "cancel_requested": False}),
    ]  # fmt: skip
    at = srv.sql("SELECT bool_and(at > now() - interval '1 minute') FROM nightcrew.audit_log")
    assert at == [(True,)]


def test_keys_cli_create_list_revoke(srv: Server, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from nightcrew.cli import main

    monkeypatch.setenv("NIGHTCREW_DATABASE_URL", srv.db_url)
    monkeypatch.setenv("NIGHTCREW_MIGRATE_ON_START", "false")
    assert main(["keys", "create", "--user", "carol"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    assert secret.startswith("nck_") and len(secret) > 40
    stored = srv.sql("SELECT encode(key_hash, 'hex') FROM nightcrew.api_keys "
                     "WHERE user_id = 'carol'")  # fmt: skip
    assert len(stored) == 1 and secret not in stored[0][0]  # only the hash is stored
    srv.keys["carol"] = secret
    with srv.client("carol") as carol:
        assert carol.get("/api/jobs").status_code == 200
    assert main(["keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "carol" in listing and secret not in listing
    assert main(["keys", "revoke", secret[:12]]) == 0
    with srv.client("carol") as carol:
        assert carol.get("/api/jobs").status_code == 401
    assert main(["keys", "create", "--user", "bad name!"]) == 2
    assert "user name must be" in capsys.readouterr().err
    actions = srv.sql("SELECT action, after->>'user_id' FROM nightcrew.audit_log ORDER BY id")
    assert actions == [("key.create", "carol"), ("key.revoke", "carol")]
