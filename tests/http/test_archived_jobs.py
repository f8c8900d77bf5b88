"""Jobs moved to nightcrew.jobs_history by pruning stay readable: the API, ``App.get_job``
and the dashboard's job page answer from the archive, read-only, under row-level security."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from nightcrew.scheduler.maintenance import prune
from tests.http.conftest import Server
from tests.http.test_isolation import api_role
from tests.support import wait_until

TERMINAL = ("completed", "failed", "cancelled")


@pytest.fixture
def hsrv(srv: Server) -> Server:
    """The server with an empty archive too."""
    srv.sql("TRUNCATE nightcrew.jobs_history")
    return srv


def enqueue(srv: Server, who: str, job_type: str, **body: object) -> str:
    with srv.client(who) as client:
        response = client.post("/api/jobs", json={"type": job_type, **body})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def finished(srv: Server, ids: list[str]) -> bool:
    rows = srv.sql("SELECT status::text FROM nightcrew.jobs WHERE id = ANY(%s::uuid[])", (ids,))
    return len(rows) == len(ids) and all(status in TERMINAL for (status,) in rows)


async def run_to_the_end(srv: Server, ids: list[str]) -> None:
    """A real worker runs the jobs until every one has finished."""
    worker = srv.app.worker(queues=["http"])
    task = asyncio.create_task(worker.run())
    await asyncio.to_thread(wait_until, lambda: finished(srv, ids), 20, "jobs to finish")
    worker.stop()
    await task


async def archive_everything_finished(srv: Server) -> None:
    """The real prune, with a clock a day ahead so every finished job is past retention."""
    now = datetime.now(UTC) + timedelta(days=1)
    await prune(srv.app, completed_after=timedelta(hours=1), failed_after=timedelta(hours=1),
                now=now)  # fmt: skip


def get(srv: Server, who: str, path: str) -> httpx.Response:
    with srv.client(who) as client:
        return client.get(path)


def dashboard(srv: Server, who: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=srv.url, timeout=10) as client:
        login = client.post("/login", data={"key": srv.keys[who]})
        session_id = login.cookies["nightcrew_session"]
        client.cookies.clear()
        client.cookies.set("nightcrew_session", session_id)
        return client.get(path)


async def test_a_pruned_job_is_read_from_history_with_the_same_json(hsrv: Server) -> None:
    done = enqueue(hsrv, "alice", "demo.echo", payload={"n": 1})
    failed = enqueue(hsrv, "alice", "demo.fail")
    await run_to_the_end(hsrv, [done, failed])
    live = {job_id: get(hsrv, "alice", f"/api/jobs/{job_id}").json() for job_id in (done, failed)}
    await archive_everything_finished(hsrv)
    await hsrv.app.aclose()
    assert hsrv.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]
    assert hsrv.sql("SELECT count(*) FROM nightcrew.jobs_history") == [(2,)]
    for job_id in (done, failed):
        archived = get(hsrv, "alice", f"/api/jobs/{job_id}")
        assert archived.status_code == 200, archived.text
        assert archived.json() == live[job_id]  # same shape, same values, status as it ended
    assert live[done]["status"] == "completed" and live[done]["result"] == {"n": 1}
    assert live[failed]["status"] == "failed" and "boom" in live[failed]["error"]
    admin = get(hsrv, "admin", f"/api/jobs/{done}")
    assert admin.status_code == 200 and admin.json() == live[done]


def test_another_users_archived_job_is_404_like_an_unknown_one(hsrv: Server) -> None:
    job_id = enqueue(hsrv, "alice", "demo.echo")
    hsrv.sql("UPDATE nightcrew.jobs SET status = 'completed', completed_at = now() WHERE id = %s",
             (job_id,))  # fmt: skip
    asyncio.run(archive_then_close(hsrv))
    unknown = get(hsrv, "alice", "/api/jobs/01900000-0000-7000-8000-000000000000")
    by_bob = get(hsrv, "bob", f"/api/jobs/{job_id}")
    assert by_bob.status_code == 404 and by_bob.json() == unknown.json()
    assert get(hsrv, "alice", f"/api/jobs/{job_id}").status_code == 200
    assert dashboard(hsrv, "bob", f"/jobs/{job_id}").status_code == 404


async def archive_then_close(srv: Server) -> None:
    await archive_everything_finished(srv)
    await srv.app.aclose()


def test_an_archived_job_cannot_be_changed(hsrv: Server) -> None:
    job_id = enqueue(hsrv, "alice", "demo.echo")
    hsrv.sql("UPDATE nightcrew.jobs SET status = 'failed', completed_at = now() WHERE id = %s",
             (job_id,))  # fmt: skip
    asyncio.run(archive_then_close(hsrv))
    with hsrv.client("alice") as client:
        answers = [client.post(f"/api/jobs/{job_id}/retry"),
                   client.post(f"/api/jobs/{job_id}/cancel"),
                   client.patch(f"/api/jobs/{job_id}", json={"priority": 5})]  # fmt: skip
    for answer, verb in zip(answers, ("retried", "cancelled", "reprioritised"), strict=True):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["message"] == f"job is archived (failed) and cannot be {verb}"
    assert hsrv.sql("SELECT count(*) FROM nightcrew.jobs") == [(0,)]
    assert hsrv.sql("SELECT count(*) FROM nightcrew.audit_log") == [(0,)]


def test_app_get_job_reads_the_archive(hsrv: Server) -> None:
    job_id = enqueue(hsrv, "alice", "demo.echo", payload={"k": "v"})
    hsrv.sql("UPDATE nightcrew.jobs SET status = 'completed', completed_at = now(),"
             " result = '{\"ok\": true}' WHERE id = %s", (job_id,))  # fmt: skip
    before = hsrv.app.get_job(job_id)
    asyncio.run(archive_then_close(hsrv))
    after = hsrv.app.get_job(job_id)
    assert after is not None and before is not None
    assert after == before and after.status.value == "completed" and after.result == {"ok": True}
    assert asyncio.run(aget_and_close(hsrv, job_id)) == before


async def aget_and_close(srv: Server, job_id: str) -> object:
    job = await srv.app.aget_job(job_id)
    await srv.app.aclose()
    return job


def test_the_dashboard_shows_an_archived_job_read_only(hsrv: Server) -> None:
    job_id = enqueue(hsrv, "alice", "demo.echo", payload={"shown": "here"})
    hsrv.sql("UPDATE nightcrew.jobs SET status = 'failed', completed_at = now(),"
             " error = 'it broke' WHERE id = %s", (job_id,))  # fmt: skip
    live = dashboard(hsrv, "alice", f"/jobs/{job_id}")
    assert live.status_code == 200 and f"/jobs/{job_id}/retry" in live.text  # actions offered
    asyncio.run(archive_then_close(hsrv))
    for who in ("alice", "admin"):
        page = dashboard(hsrv, who, f"/jobs/{job_id}")
        assert page.status_code == 200, page.text
        assert 'id="job-archived"' in page.text and "shown" in page.text
        assert f"/jobs/{job_id}/retry" not in page.text  # read-only: no actions
        assert f"/jobs/{job_id}/discard" not in page.text


def test_the_api_role_reads_only_its_own_archived_jobs_and_changes_none(hsrv: Server) -> None:
    for who in ("alice", "bob", "bob"):
        job_id = enqueue(hsrv, who, "demo.echo")
        hsrv.sql("UPDATE nightcrew.jobs SET status = 'completed', completed_at = now()"
                 " WHERE id = %s", (job_id,))  # fmt: skip
    hsrv.app.enqueue("demo.echo", {})  # no user: only admins may see it once archived
    hsrv.sql("UPDATE nightcrew.jobs SET status = 'completed', completed_at = now()")
    asyncio.run(archive_then_close(hsrv))
    history = "SELECT job ->> 'user_id' FROM nightcrew.jobs_history ORDER BY 1"
    with api_role(hsrv, "alice") as conn:
        assert conn.execute(history).fetchall() == [("alice",)]  # no WHERE: the policy filters
        for statement in ("DELETE FROM nightcrew.jobs_history",
                          "UPDATE nightcrew.jobs_history SET queue = 'x'",
                          "INSERT INTO nightcrew.jobs_history (id, type, queue, status, created_at,"
                          " job) VALUES (gen_random_uuid(), 't', 'q', 'completed', now(),"
                          " '{\"user_id\": \"alice\"}')"):  # fmt: skip
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with api_role(hsrv, None) as conn:  # no acting user: nothing
        assert conn.execute(history).fetchall() == []
    with api_role(hsrv, "root", admin=True) as conn:
        assert conn.execute(history).fetchall() == [("alice",), ("bob",), ("bob",), (None,)]
