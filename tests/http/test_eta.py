"""Time remaining (eta_seconds) of running jobs: in the Python Job, the HTTP JSON and the
event stream; from the job's own progress rate, else the median duration of its type."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.http.conftest import Server
from tests.http.test_sse import next_job, sse


async def test_the_event_stream_carries_the_time_remaining_from_the_jobs_own_rate(
    srv: Server,
) -> None:
    srv.gates.queue = asyncio.Queue()
    worker = srv.app.worker(queues=["http"])
    states: list[dict[str, Any]] = []
    async with srv.aclient("alice") as client:
        job = (await client.post("/api/jobs", json={"type": "demo.steps"})).json()
        assert job["eta_seconds"] is None  # pending
        async with client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
            stream = sse(response)
            states.append((await next_job(stream, []))["data"])
            running = asyncio.create_task(worker.run())
            while states[-1]["status"] != "completed":
                states.append((await next_job(stream, []))["data"])
                if states[-1]["status"] == "processing":
                    if states[-1]["progress"] == 50:
                        # Read mid-run: the API's JSON and the Python Job agree.
                        got = (await client.get(f"/api/jobs/{job['id']}")).json()
                        assert got["eta_seconds"] is not None and got["eta_seconds"] > 0
                        python_job = await srv.app.aget_job(job["id"])
                        assert python_job is not None and python_job.eta_seconds is not None
                    await asyncio.sleep(0.2)  # time passes between the saves: a rate
                    srv.gates.queue.put_nowait("go")
    worker.stop()
    await running
    await srv.app.aclose()
    etas = [(s["status"], s["progress"], s["eta_seconds"] is not None) for s in states]
    assert etas == [
        ("pending", 0, False),
        ("processing", 0, False),  # no progress and no history of the type: unknown
        ("processing", 25, True),
        ("processing", 50, True),
        ("processing", 75, True),
        ("completed", 100, False),
    ]
    at_75 = states[4]["eta_seconds"]
    assert 0 < at_75 < 60
    # The first progress save of the attempt is the base of the job's own rate.
    [(base, base_at, started)] = srv.sql(
        "SELECT progress_base, progress_base_at, started_at FROM nightcrew.jobs WHERE id = %s",
        (job["id"],),
    )
    assert base == 25 and base_at > started


def fake_running(srv: Server, *, progress: float, started_ago: float, user: str = "alice") -> str:
    """A job that looks running for ``started_ago`` seconds, with ``progress`` saved once."""
    with srv.client(user) as client:
        job_id = client.post("/api/jobs", json={"type": "demo.echo"}).json()["id"]
    srv.sql(
        "UPDATE nightcrew.jobs SET status = 'processing', attempts = 1, worker_id = 'w',"
        " lease_expires_at = now() + interval '1 hour',"
        " started_at = now() - make_interval(secs => %s), progress = %s,"
        " progress_base = CASE WHEN %s > 0 THEN %s END,"
        " progress_base_at = CASE WHEN %s > 0 THEN now() END WHERE id = %s",
        (started_ago, progress, progress, progress, progress, job_id),
    )
    return job_id


def history(srv: Server, *, user: str, seconds_bucket: int, count: int) -> None:
    """``count`` completed demo.echo jobs of ``user`` in rollup bucket ``seconds_bucket``."""
    srv.sql(
        f"INSERT INTO nightcrew.stats_minute (minute, type, user_id, shard, completed,"
        f" h{seconds_bucket}) VALUES (date_trunc('minute', now()), 'demo.echo', %s, 0, %s, %s)",
        (user, count, count),
    )


def test_without_a_rate_the_median_duration_of_the_type_minus_the_time_spent(
    srv: Server,
) -> None:
    # h14: durations in (40.96 s, 81.92 s]; the median of one bucket is its middle, 61.44 s.
    history(srv, user="alice", seconds_bucket=14, count=10)
    job_id = fake_running(srv, progress=0, started_ago=20)
    with srv.client("alice") as client:
        one = client.get(f"/api/jobs/{job_id}").json()
        listed = client.get("/api/jobs").json()["items"]
    assert 40 < one["eta_seconds"] < 42  # 61.44 - ~20
    [in_list] = [item["eta_seconds"] for item in listed if item["id"] == job_id]
    assert abs(in_list - one["eta_seconds"]) < 1
    python_job = srv.app.get_job(job_id)
    assert python_job is not None and python_job.eta_seconds is not None
    assert 40 < python_job.eta_seconds < 42
    [listed_job] = [j for j in srv.app.list_jobs(type="demo.echo") if str(j.id) == job_id]
    assert listed_job.eta_seconds is not None and 40 < listed_job.eta_seconds < 42
    # Bob's history of the type is not shown to alice (row-level security on the rollup).
    srv.sql("TRUNCATE nightcrew.stats_minute")
    history(srv, user="bob", seconds_bucket=14, count=10)
    with srv.client("alice") as client:
        assert client.get(f"/api/jobs/{job_id}").json()["eta_seconds"] is None


def test_a_rate_of_its_own_wins_over_the_median(srv: Server) -> None:
    history(srv, user="alice", seconds_bucket=20, count=10)  # typically ~an hour
    job_id = fake_running(srv, progress=20, started_ago=10)
    with srv.client("alice") as client:
        eta = client.get(f"/api/jobs/{job_id}").json()["eta_seconds"]
    assert 38 < eta < 42  # 80 % left at 2 % per second
