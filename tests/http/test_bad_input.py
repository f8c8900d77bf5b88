"""Bad requests get a clear error naming the problem, and write nothing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http.conftest import Server


def nothing_written(srv: Server) -> None:
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]
    assert srv.sql("SELECT count(*) FROM nightcrew.audit_log") == [(0,)]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "demo.echo", "priority": "high"}, "priority", "valid integer"),
        ({"type": "demo.echo", "priority": 10**9}, "priority", "less than or equal to 1000"),
        ({"type": "demo.echo", "priority": 1.5}, "priority", "integer"),
        ({"type": "demo.echo", "delay_seconds": -1}, "delay_seconds", "greater than or equal"),
        ({"type": "demo.echo", "delay_seconds": "soon"}, "delay_seconds", "valid number"),
        ({"type": "demo.echo", "run_at": "next tuesday"}, "run_at", "datetime"),
        ({"type": "demo.echo", "run_at": "2030-01-01T00:00:00"}, "run_at", "timezone"),
        ({"type": "demo.echo", "run_at": "2030-02-30T00:00:00Z"}, "run_at", "datetime"),
        ({"type": "demo.echo", "run_at": -933}, "run_at", "ISO 8601"),  # not a Unix time
        ({"type": "demo.echo", "run_at": "2030-01-01T00:00:00Z", "delay_seconds": 1},
         "body", "not both"),
        ({"type": "demo.echo", "max_attempts": 0}, "max_attempts", "greater than or equal"),
        ({"type": "demo.echo", "queue": ""}, "queue", "at least 1 character"),
        ({"type": "demo.echo", "dedupe_key": 5}, "dedupe_key", "valid string"),
        ({"type": "demo.echo", "dedupe_key": "k", "dedupe_scope": "later"}, "dedupe_scope",
         "'active' or 'queued'"),
        ({"type": "demo.echo", "dedupe_scope": "queued"}, "dedupe_scope", "needs a dedupe_key"),
        ({"type": "demo.echo", "delay": 5}, "delay", "Extra inputs"),
        ({"type": 3}, "type", "valid string"),
        ({"payload": {}}, "type", "Field required"),
        ({"type": "demo.typed", "payload": {"week": "x"}}, "payload", "week"),
        ({"type": "demo.nope"}, "type", "unknown job type 'demo.nope'"),
        ([1, 2], "body", "valid dictionary"),
    ],
)  # fmt: skip
def test_enqueue_rejects_with_422_naming_the_field(
    srv: Server, body: object, field: str, words: str
) -> None:
    with srv.client("alice") as client:
        response = client.post("/api/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and error["field"] == field
    assert words in error["message"]
    nothing_written(srv)


def test_nan_delay_is_refused(srv: Server) -> None:
    with srv.client("alice") as client:
        response = client.post("/api/jobs", content=b'{"type": "demo.echo", "delay_seconds": NaN}',
                               headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and response.json()["error"]["field"] == "delay_seconds"
    nothing_written(srv)


@pytest.mark.parametrize("raw", [b"{", b'{"type": "demo.echo",}', b"\xff\xfe", b"nul"])
def test_malformed_json_is_400(srv: Server, raw: bytes) -> None:
    with srv.client("alice") as client:
        response = client.post("/api/jobs", content=raw,
                               headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "malformed_json"
    nothing_written(srv)


def test_bodies_over_the_limit_are_413(srv: Server) -> None:
    big = b'{"type": "demo.echo", "payload": "' + b"x" * 70_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    with srv.client("alice") as client:
        declared = client.post("/api/jobs", content=big,
                               headers={"Content-Type": "application/json"})  # fmt: skip
        chunked = client.post("/api/jobs", content=chunks(),
                              headers={"Content-Type": "application/json"})  # fmt: skip
        fits = client.post("/api/jobs", json={"type": "demo.echo", "payload": "x" * 60_000})
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"
        assert "65536 bytes" in response.json()["error"]["message"]
    assert fits.status_code == 202
    assert srv.sql("SELECT count(*) FROM nightcrew.jobs") == [(1,)]


def test_ids_that_are_not_uuids_are_404(srv: Server) -> None:
    with srv.client("alice") as client:
        answers = [
            client.get("/api/jobs/42"), client.get("/api/jobs/not-a-uuid/events"),
            client.post("/api/jobs/x/cancel"), client.post("/api/jobs/x/retry"),
            client.patch("/api/jobs/x", json={"priority": 1}),
        ]  # fmt: skip
    for response in answers:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    nothing_written(srv)


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"),
     ({"status": "asleep"}, "status"), ({"cursor": "zzz"}, "cursor")],
)  # fmt: skip
def test_list_rejects_bad_query_parameters(srv: Server, params: dict[str, object],
                                           field: str) -> None:  # fmt: skip
    with srv.client("alice") as client:
        response = client.get("/api/jobs", params=params)
    assert response.status_code == 422 and response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "priority"), ({"priority": 5000}, "priority"), ({"priority": 1, "x": 1}, "x")],
)
def test_patch_rejects_bad_bodies(srv: Server, body: dict[str, object], field: str) -> None:
    with srv.client("alice") as client:
        job = client.post("/api/jobs", json={"type": "demo.echo"}).json()
        response = client.patch(f"/api/jobs/{job['id']}", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == field
    assert srv.sql("SELECT priority FROM nightcrew.jobs") == [(0,)]
    assert srv.sql("SELECT count(*) FROM nightcrew.audit_log") == [(0,)]


@pytest.mark.parametrize(
    ("body", "field"),
    [({"action": "delete", "ids": []}, "action"), ({"action": "cancel", "ids": ["x"]}, "ids.0"),
     ({"action": "retry", "ids": [], "filter": {}}, "ids"),
     ({"action": "retry", "filter": {"status": "odd"}}, "filter.status")],
)  # fmt: skip
def test_bulk_rejects_bad_bodies(srv: Server, body: dict[str, object], field: str) -> None:
    with srv.client("alice") as client:
        response = client.post("/api/jobs/bulk", json=body)
    assert response.status_code == 422 and response.json()["error"]["field"] == field
    nothing_written(srv)


def test_unknown_route_and_method_use_the_error_shape(srv: Server) -> None:
    with srv.client("alice") as client:
        missing = client.get("/api/nothing")
        wrong_method = client.delete("/api/jobs")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"type": "demo.echo", "payload": {"k": "a\u0000b"}}, "payload"),
     ({"type": "demo.echo", "dedupe_key": "a\u0000b"}, "dedupe_key"),
     ({"type": "demo.echo", "queue": "q\u0000"}, "queue")],
)  # fmt: skip
def test_nul_characters_postgres_cannot_store_are_422(
    srv: Server, body: dict[str, object], field: str
) -> None:
    with srv.client("alice") as client:
        response = client.post("/api/jobs", json=body)
        listed = client.get("/api/jobs", params={"type": "a\u0000"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert listed.status_code == 422
    nothing_written(srv)


def test_payload_nested_deeper_than_64_is_422_and_lists_keep_working(srv: Server) -> None:
    deep: object = 1
    for _ in range(256):
        deep = [deep]
    with srv.client("alice") as client:
        refused = client.post("/api/jobs", json={"type": "demo.echo", "payload": deep})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "payload" and "nested deeper than 64 levels" in error["message"]
    with srv.client("admin") as admin:
        assert admin.get("/api/jobs").status_code == 200
