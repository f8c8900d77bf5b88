"""/api/schedules: read by any key; enable/disable, re-time and run now by admins, audited."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.conftest import Server

NIGHTLY = "demo.nightly"


@pytest.fixture(scope="module")
def declared(server: Server) -> Server:
    """The server's App with a cron schedule (and the built-in ones) declared."""
    server.app.schedule("demo.echo", name=NIGHTLY, cron="0 2 * * *", payload={"n": 1})
    return server


@pytest.fixture
def sched(declared: Server, srv: Server) -> Server:
    """Schedules stored afresh from code, an empty queue and audit log."""
    srv.sql("DELETE FROM nightcrew.schedules")
    srv.app.sync_schedules()
    return srv


def audit(srv: Server) -> list[tuple[Any, ...]]:
    return srv.sql("SELECT actor, action, target, before, after FROM nightcrew.audit_log "
                   "WHERE action LIKE 'schedule.%%' ORDER BY id")  # fmt: skip


def stored(srv: Server) -> Any:
    [info] = [s for s in srv.app.schedules_list() if s.name == NIGHTLY]
    return info


def test_every_key_may_list_schedules(sched: Server) -> None:
    with sched.client() as anonymous:
        refused = anonymous.get("/api/schedules")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    with sched.client("alice") as client:
        listed = client.get("/api/schedules")
    assert listed.status_code == 200
    items = {item["name"]: item for item in listed.json()["items"]}
    assert {NIGHTLY, "nightcrew.rescue", "nightcrew.prune"} <= set(items)
    nightly = items[NIGHTLY]
    assert (nightly["type"], nightly["cron"], nightly["every_seconds"]) == (
        "demo.echo", "0 2 * * *", None,
    )  # fmt: skip
    assert nightly["enabled"] and nightly["timezone"] == "UTC" and nightly["deferrals"] == 0
    assert nightly["next_run_at"] == stored(sched).next_run_at.isoformat().replace("+00:00", "Z")
    assert "payload" not in nightly  # readable by every key, so no payload
    assert items["nightcrew.rescue"]["every_seconds"] == 60.0


def test_admin_disables_enables_and_retimes_with_audit(sched: Server) -> None:
    with sched.client("admin") as admin:
        off = admin.patch(f"/api/schedules/{NIGHTLY}", json={"enabled": False})
        assert off.status_code == 200 and off.json()["enabled"] is False
        assert stored(sched).enabled is False
        retimed = admin.patch(
            f"/api/schedules/{NIGHTLY}", json={"cron": "30 4 * * *", "enabled": True}
        )
    assert retimed.status_code == 200
    body = retimed.json()
    assert (body["cron"], body["enabled"]) == ("30 4 * * *", True)
    info = stored(sched)
    assert (info.cron, info.enabled) == ("30 4 * * *", True)
    assert (info.next_run_at.hour, info.next_run_at.minute) == (4, 30)
    [first, second] = audit(sched)
    assert first[:3] == ("root", "schedule.update", f"schedule:{NIGHTLY}")
    assert (first[3]["enabled"], first[4]["enabled"]) == (True, False)
    assert (second[3]["cron"], second[4]["cron"]) == ("0 2 * * *", "30 4 * * *")
    assert (second[3]["enabled"], second[4]["enabled"]) == (False, True)
    assert second[4]["next_run_at"] != second[3]["next_run_at"]


def test_run_now_enqueues_the_job_and_audits_it(sched: Server) -> None:
    with sched.client("admin") as admin:
        ran = admin.post(f"/api/schedules/{NIGHTLY}/run")
    assert ran.status_code == 202
    job_id = ran.json()["job_id"]
    assert ran.json()["schedule"] == NIGHTLY
    rows = sched.sql("SELECT type, payload, schedule_name, status::text FROM nightcrew.jobs "
                     "WHERE id = %s", (job_id,))  # fmt: skip
    assert rows == [("demo.echo", {"n": 1}, NIGHTLY, "pending")]
    assert str(stored(sched).last_job_id) == job_id
    [entry] = audit(sched)
    assert entry == ("root", "schedule.run", f"schedule:{NIGHTLY}", None, {"job_id": job_id})


def test_users_may_not_manage_schedules(sched: Server) -> None:
    with sched.client("alice") as alice:
        patched = alice.patch(f"/api/schedules/{NIGHTLY}", json={"enabled": False})
        ran = alice.post(f"/api/schedules/{NIGHTLY}/run")
    for refused in (patched, ran):
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "forbidden"
    with sched.client() as anonymous:
        assert anonymous.post(f"/api/schedules/{NIGHTLY}/run").status_code == 401
    assert stored(sched).enabled is True
    assert sched.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]
    assert audit(sched) == []


def test_bad_changes_are_refused_and_change_nothing(sched: Server) -> None:
    with sched.client("admin") as admin:
        bad_cron = admin.patch(f"/api/schedules/{NIGHTLY}", json={"cron": "61 * * * *"})
        short = admin.patch(f"/api/schedules/{NIGHTLY}", json={"cron": "* *"})
        never = admin.patch(f"/api/schedules/{NIGHTLY}", json={"cron": "0 0 31 2 *"})
        empty = admin.patch(f"/api/schedules/{NIGHTLY}", json={})
        not_bool = admin.patch(f"/api/schedules/{NIGHTLY}", json={"enabled": "no"})
        unknown = admin.patch("/api/schedules/nope", json={"enabled": False})
        run_unknown = admin.post("/api/schedules/nope/run")
    error = bad_cron.json()["error"]
    assert bad_cron.status_code == 422 and error["field"] == "cron"
    assert error["message"].startswith("cron: invalid cron '61 * * * *'")
    assert short.status_code == 422 and "has 2 fields" in short.json()["error"]["message"]
    assert never.status_code == 422 and never.json()["error"]["field"] == "cron"
    assert "'0 0 31 2 *' never fires" in never.json()["error"]["message"]
    assert empty.status_code == 422 and "give enabled and/or cron" in empty.text
    assert not_bool.status_code == 422 and not_bool.json()["error"]["field"] == "enabled"
    for missing in (unknown, run_unknown):
        assert missing.status_code == 404
        assert missing.json()["error"]["message"] == "schedule not found"
    info = stored(sched)
    assert (info.cron, info.enabled) == ("0 2 * * *", True)
    assert audit(sched) == []


def test_schedules_carry_their_last_7_days(sched: Server) -> None:
    sched.sql("TRUNCATE nightcrew.schedule_runs_daily")
    sched.sql(
        "INSERT INTO nightcrew.schedule_runs_daily (schedule_name, day, succeeded, failed,"
        " duration_sum, duration_n, last_at, last_status) VALUES"
        " (%s, (now() AT TIME ZONE 'UTC')::date, 3, 1, 8.0, 4, now(), 'failed'),"
        " (%s, (now() AT TIME ZONE 'UTC')::date - 1, 2, 0, 2.0, 2, now() - interval '1 day',"
        "  'completed'),"
        " (%s, (now() AT TIME ZONE 'UTC')::date - 7, 50, 50, 1.0, 100, now() - interval '7 days',"
        "  'completed')",
        (NIGHTLY, NIGHTLY, NIGHTLY),
    )
    with sched.client("alice") as client:
        items = {item["name"]: item for item in client.get("/api/schedules").json()["items"]}
    stats = items[NIGHTLY]["stats_7d"]
    assert (stats["succeeded"], stats["failed"], stats["last_outcome"]) == (5, 1, "failed")
    assert stats["avg_duration_s"] == 10.0 / 6 and stats["last_run_at"] is not None
    rescue = items["nightcrew.rescue"]["stats_7d"]
    assert rescue == {"succeeded": 0, "failed": 0, "avg_duration_s": None, "last_run_at": None,
                      "last_outcome": None}  # fmt: skip
