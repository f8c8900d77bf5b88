"""/api/queues and /api/limits: queues read by any key; pause, resume and limits by admins
only (403 for others), every change audited; bad input is a 422 naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Server


@pytest.fixture
def flow(srv: Server) -> Server:
    """No pause, no limit state, an empty audit log."""
    srv.sql("TRUNCATE nightcrew.queue_pauses, nightcrew.limits, nightcrew.limit_slots,"
            " nightcrew.limit_reservations")  # fmt: skip
    return srv


def audit(srv: Server, prefix: str) -> list[tuple[Any, ...]]:
    return srv.sql("SELECT actor, action, target, before, after FROM nightcrew.audit_log "
                   "WHERE action LIKE %s ORDER BY id", (prefix + "%",))  # fmt: skip


def test_any_key_lists_queues_with_depth_running_and_pause(flow: Server) -> None:
    flow.app.enqueue_many([{"type": "demo.echo", "payload": {}}] * 3)
    with flow.client() as anonymous:
        assert anonymous.get("/api/queues").status_code == 401
    with flow.client("alice") as alice:
        listed = alice.get("/api/queues")
    assert listed.status_code == 200
    items = {item["name"]: item for item in listed.json()["items"]}
    queue = items["http"]
    assert (queue["depth"], queue["running"], queue["paused"]) == (3, 0, False)
    assert queue["jobs_per_minute"] == 0 and queue["paused_at"] is None


def test_admin_pauses_and_resumes_a_queue_audited(flow: Server) -> None:
    with flow.client("admin") as admin:
        paused = admin.post("/api/queues/http/pause")
        again = admin.post("/api/queues/http/pause")
        listed = admin.get("/api/queues").json()["items"]
        resumed = admin.post("/api/queues/http/resume")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert again.status_code == 200 and again.json()["paused"] is True
    assert [q["paused"] for q in listed if q["name"] == "http"] == [True]
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    # The repeated pause changed nothing, so it left no audit entry.
    assert audit(flow, "queue.") == [
        ("root", "queue.pause", "queue:http", {"paused": False}, {"paused": True}),
        ("root", "queue.resume", "queue:http", {"paused": True}, {"paused": False}),
    ]


def test_users_may_not_pause_resume_or_touch_limits(flow: Server) -> None:
    flow.app.set_limit("places", rate="10/s")
    with flow.client("alice") as alice:
        answers = [
            alice.post("/api/queues/http/pause"),
            alice.post("/api/queues/http/resume"),
            alice.get("/api/limits"),
            alice.put("/api/limits/places", json={"rate": "1000/s"}),
            alice.delete("/api/limits/places"),
        ]
    assert [a.status_code for a in answers] == [403] * 5
    assert all(a.json()["error"]["code"] == "forbidden" for a in answers)
    assert "admin" in answers[0].json()["error"]["message"]
    assert flow.sql("SELECT count(*) FROM nightcrew.queue_pauses") == [(0,)]
    assert [(i.rate, i.overridden) for i in flow.app.limits()] == [("10/s", True)]
    assert audit(flow, "queue.") == [] and audit(flow, "limit.") == []


def test_admin_sets_lists_and_clears_a_limit_audited(flow: Server) -> None:
    with flow.client("admin") as admin:
        put = admin.put("/api/limits/tenant:alice", json={"rate": "5/m", "concurrency": 2})
        listed = admin.get("/api/limits")
        cleared = admin.delete("/api/limits/tenant:alice")
        missing = admin.delete("/api/limits/tenant:alice")
    assert put.status_code == 200, put.text
    body = put.json()
    assert (body["key"], body["rate"], body["concurrency"], body["overridden"]) == (
        "tenant:alice", "5/m", 2, True,
    )  # fmt: skip
    assert body["running"] == 0 and body["code_rate"] is None
    assert [item["key"] for item in listed.json()["items"]] == ["tenant:alice"]
    assert cleared.status_code == 200 and cleared.json()["overridden"] is False
    assert missing.status_code == 404
    assert audit(flow, "limit.") == [
        ("root", "limit.set", "limit:tenant:alice", None,
         {"rate": "5/m", "concurrency": 2, "overridden": True}),
        ("root", "limit.clear", "limit:tenant:alice",
         {"rate": "5/m", "concurrency": 2, "overridden": True},
         {"rate": None, "concurrency": None, "overridden": False}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/limits/places", {"rate": "fast"}, "rate"),
        ("/api/limits/places", {"rate": "0/s"}, "rate"),
        ("/api/limits/places", {}, None),
        ("/api/limits/places", {"concurrency": 0}, "concurrency"),
        ("/api/limits/places", {"concurrency": "2"}, "concurrency"),
        ("/api/limits/places", {"rate": "1/s", "burst": 3}, "burst"),
        ("/api/limits/" + "k" * 201, {"rate": "1/s"}, "key"),
    ],
)
def test_bad_limit_changes_are_422_naming_the_field(
    flow: Server, path: str, body: dict[str, Any], field: str | None
) -> None:
    with flow.client("admin") as admin:
        answer = admin.put(path, json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    if field is not None:
        assert field in (str(error.get("field")) + error["message"])
    assert flow.app.limits() == []


def test_bad_queue_name_is_422(flow: Server) -> None:
    with flow.client("admin") as admin:
        answer = admin.post("/api/queues/" + "q" * 101 + "/pause")
    assert answer.status_code == 422
    assert "queue name" in answer.json()["error"]["message"]
