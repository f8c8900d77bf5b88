"""``POST /api/jobs`` with ``depends_on``: the job JSON shows its parents; unknown,
invisible (another user's) and self-dependencies are 422 naming ``depends_on``."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from uuid import uuid4

import httpx
import psycopg

from nightcrew.http.dashboard import auth
from tests.http.conftest import Server


def post(srv: Server, who: str, body: dict[str, Any]) -> Any:
    with srv.client(who) as client:
        return client.post("/api/jobs", json=body)


def enqueue(srv: Server, who: str, **body: Any) -> str:
    response = post(srv, who, {"type": "demo.echo", **body})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def assert_refused(response: Any, words: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "depends_on" and words in error["message"], error
    assert "Traceback" not in response.text


def test_the_job_json_shows_its_parents_and_how_many_are_unfinished(srv: Server) -> None:
    parents = sorted([enqueue(srv, "alice"), enqueue(srv, "alice")])
    response = post(srv, "alice", {"type": "demo.echo", "depends_on": parents,
                                   "on_parent_failure": "run"})  # fmt: skip
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["depends_on"] == parents and body["pending_parents"] == 2
    with srv.client("alice") as client:
        listed = client.get("/api/jobs").json()["items"]
        alone = client.get(f"/api/jobs/{parents[0]}").json()
    assert {item["id"]: item["pending_parents"] for item in listed}[body["id"]] == 2
    assert alone["depends_on"] == [] and alone["pending_parents"] == 0
    assert srv.sql("SELECT on_parent_failure FROM nightcrew.jobs WHERE id = %s",
                   (body["id"],)) == [("run",)]  # fmt: skip


def test_an_unknown_parent_is_422(srv: Server) -> None:
    missing = str(uuid4())
    assert_refused(post(srv, "alice", {"type": "demo.echo", "depends_on": [missing]}), missing)
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]


def test_another_users_job_is_refused_like_an_unknown_one(srv: Server) -> None:
    bobs = enqueue(srv, "bob")
    response = post(srv, "alice", {"type": "demo.echo", "depends_on": [bobs]})
    assert_refused(response, f"no job {bobs}")
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(1,)]
    assert srv.sql("SELECT has_dependents FROM nightcrew.jobs WHERE id = %s", (bobs,)) == [(False,)]
    # An admin sees every job, so may depend on bob's.
    assert enqueue(srv, "admin", depends_on=[bobs])


def test_a_job_depending_on_itself_is_422(srv: Server) -> None:
    first = enqueue(srv, "alice", dedupe_key="nightly")
    response = post(srv, "alice", {"type": "demo.echo", "dedupe_key": "nightly",
                                   "depends_on": [first]})  # fmt: skip
    assert_refused(response, "cannot depend on itself")


def test_malformed_depends_on_is_422(srv: Server) -> None:
    for value in ("x", ["not-a-uuid"], [1], {"a": 1}):
        response = post(srv, "alice", {"type": "demo.echo", "depends_on": value})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"].startswith("depends_on"), response.text
    response = post(srv, "alice", {"type": "demo.echo", "depends_on": [enqueue(srv, "alice")],
                                   "on_parent_failure": "ignore"})  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "on_parent_failure"


def dashboard_get(srv: Server, who: str, path: str) -> Any:
    """GET a dashboard page logged in as ``who`` (the session cookie sent by hand: it is
    ``Secure``, and this server speaks plain HTTP)."""
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        login = client.post("/login", data={"key": srv.keys[who]}, follow_redirects=False)
        assert login.status_code == 303, login.text
        jar: SimpleCookie = SimpleCookie()
        for header in login.headers.get_list("set-cookie"):
            jar.load(header)
        client.cookies.clear()
        return client.get(path, headers={"Cookie": f"{auth.COOKIE}={jar[auth.COOKIE].value}"})


def test_the_dashboard_job_page_lists_parents_and_dependents(srv: Server) -> None:
    parent = enqueue(srv, "alice")
    bobs = enqueue(srv, "bob")
    child = enqueue(srv, "alice", depends_on=[parent])
    # bob's job depends on alice's: alice's page must not list it.
    srv.sql("UPDATE nightcrew.jobs SET depends_on = NULL WHERE id = %s", (bobs,))
    srv.sql("INSERT INTO nightcrew.job_dependencies (parent_id, job_id) VALUES (%s, %s)",
            (parent, bobs))  # fmt: skip

    page = dashboard_get(srv, "alice", f"/jobs/{parent}")
    assert page.status_code == 200, page.text
    dependents = page.text.split('id="job-dependents"', 1)[1].split("</ul>", 1)[0]
    assert f'href="/jobs/{child}"' in dependents and "pending" in dependents
    assert bobs not in page.text

    page = dashboard_get(srv, "alice", f"/jobs/{child}")
    parents = page.text.split('id="job-parents"', 1)[1].split("</ul>", 1)[0]
    assert f'href="/jobs/{parent}"' in parents
    assert "Waiting for 1 of 1 to end" in page.text


def test_the_api_role_sees_only_the_edges_of_dependents_it_may_see(srv: Server) -> None:
    alices = enqueue(srv, "alice")
    bobs_child = enqueue(srv, "admin", depends_on=[alices])
    srv.sql("UPDATE nightcrew.jobs SET user_id = 'bob' WHERE id = %s", (bobs_child,))
    alices_child = enqueue(srv, "alice", depends_on=[alices])
    with psycopg.connect(srv.db_url) as conn:
        conn.execute("SET LOCAL ROLE nightcrew_api")
        conn.execute("SELECT set_config('nightcrew.user_id', 'alice', true)")
        seen = conn.execute("SELECT job_id::text FROM nightcrew.job_dependencies").fetchall()
    assert seen == [(alices_child,)]
