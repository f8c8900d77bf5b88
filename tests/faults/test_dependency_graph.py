"""A graph of 2,000 jobs (fan-outs of 50 into one, chains of 20, diamonds) over two worker
processes, one SIGKILLed and restarted twice: every dependent runs exactly once, strictly
after all its parents completed, none is lost; a failing parent's dependents are cancelled
naming it."""

from __future__ import annotations

import signal
import time
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew import App
from tests.faults.conftest import OURS, WorkerProcesses, scalar
from tests.support import wait_until

FAN_OUTS, FAN_WIDTH = 20, 50
CHAINS, CHAIN_LENGTH = 40, 20
DIAMONDS = 45
TOTAL = FAN_OUTS * (FAN_WIDTH + 1) + CHAINS * CHAIN_LENGTH + DIAMONDS * 4
NODE = {"type": "faults.node", "payload": {"sleep": 0.01}}
FAILING = {"type": "faults.node", "payload": {"fail": True}, "max_attempts": 1}
FAILING_LINK = 4  # the fifth job of chain 0 fails: the 15 after it are cancelled


def build_graph(app: App) -> dict[str, Any]:
    """Enqueue the graph (while the workers run); return what the checks need."""
    failing: list[UUID] = []
    cancelled: dict[UUID, UUID] = {}  # dependent -> the parent its error must name
    for k in range(FAN_OUTS):
        children = [dict(NODE) for _ in range(FAN_WIDTH)]
        if k == 0:
            children[FAN_WIDTH // 2] = FAILING
        out = app.fan_out(children, then=NODE)
        if k == 0:
            failing.append(out.children[FAN_WIDTH // 2])
            cancelled[out.then] = out.children[FAN_WIDTH // 2]
    for k in range(CHAINS):
        previous: UUID | None = None
        for link in range(CHAIN_LENGTH):
            spec = FAILING if (k, link) == (0, FAILING_LINK) else NODE
            parents = [previous] if previous else None
            current = app.enqueue(spec["type"], spec["payload"], depends_on=parents,
                                  max_attempts=spec.get("max_attempts"))  # fmt: skip
            if (k, link) == (0, FAILING_LINK):
                failing.append(current)
            elif k == 0 and link > FAILING_LINK:
                assert previous is not None
                cancelled[current] = previous
            previous = current
    for _ in range(DIAMONDS):
        top = app.enqueue("faults.node", NODE["payload"])
        left = app.enqueue("faults.node", NODE["payload"], depends_on=[top])
        right = app.enqueue("faults.node", NODE["payload"], depends_on=[top])
        app.enqueue("faults.node", NODE["payload"], depends_on=[left, right])
    return {"failing": failing, "cancelled": cancelled}


def finished(url: str) -> int:
    return int(scalar(url, f"SELECT count(*) FROM nightcrew.jobs WHERE {OURS}"
                           " AND status IN ('completed', 'failed', 'cancelled')"))  # fmt: skip


def test_a_graph_survives_a_worker_killed_twice(
    producer: App, clean_db: str, workers: WorkerProcesses
) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS graph_starts, graph_runs")
        conn.execute("CREATE TABLE graph_starts (job_id uuid, at timestamptz"
                     " NOT NULL DEFAULT clock_timestamp())")  # fmt: skip
        conn.execute("CREATE TABLE graph_runs (job_id uuid PRIMARY KEY, parents int,"
                     " parents_completed boolean)")  # fmt: skip
    steady = workers.start(clean_db, concurrency=8)
    victim = workers.start(clean_db, concurrency=8)
    for proc in (steady, victim):
        workers.wait_registered(clean_db, proc)
    begin = time.monotonic()
    expected = build_graph(producer)
    for threshold in (TOTAL // 4, TOTAL // 2):
        wait_until(lambda t=threshold: finished(clean_db) >= t, 60, f"{threshold} jobs to end")
        workers.signal(victim, signal.SIGKILL)
        victim.wait(10)
        victim = workers.start(clean_db, concurrency=8)
    wait_until(lambda: finished(clean_db) == TOTAL, 90, "every job of the graph to end")
    print(f"{TOTAL} jobs in {time.monotonic() - begin:.1f}s")

    with psycopg.connect(clean_db, row_factory=dict_row) as conn:
        jobs = {row["id"]: row for row in conn.execute(
            f"SELECT id, status::text AS status, depends_on, error, started_at, completed_at,"
            f" pending_parents FROM nightcrew.jobs WHERE {OURS}")}  # fmt: skip
        runs = {row["job_id"]: row for row in conn.execute("SELECT * FROM graph_runs")}
        first_start = {row["job_id"]: row["at"] for row in conn.execute(
            "SELECT job_id, min(at) AS at FROM graph_starts GROUP BY job_id")}  # fmt: skip
        rescued = conn.execute(
            f"SELECT count(*) AS n FROM nightcrew.jobs WHERE {OURS} AND attempts > 1"
        ).fetchone()
    assert len(jobs) == TOTAL
    by_status: dict[str, set[UUID]] = {}
    for job_id, row in jobs.items():
        by_status.setdefault(row["status"], set()).add(job_id)
    assert by_status.get("failed", set()) == set(expected["failing"]), by_status.get("failed")
    assert by_status.get("cancelled", set()) == set(expected["cancelled"])
    assert len(by_status["completed"]) == TOTAL - len(expected["failing"]) - len(
        expected["cancelled"]
    )
    # Exactly one run of every completed job, none of a cancelled or failed one.
    assert set(runs) == by_status["completed"]
    for job_id, parent in expected["cancelled"].items():
        row = jobs[job_id]
        assert row["error"] == (
            f"parent job {parent} (faults.node) ended {jobs[parent]['status']}"
        ), row
        assert job_id not in first_start, "a cancelled dependent started"
    dependents = [row for row in jobs.values() if row["depends_on"]]
    assert len(dependents) == FAN_OUTS + CHAINS * (CHAIN_LENGTH - 1) + DIAMONDS * 3
    for row in dependents:
        assert row["pending_parents"] == 0, row
        if row["status"] != "completed":
            continue
        parents = [jobs[parent] for parent in row["depends_on"]]
        assert all(parent["status"] == "completed" for parent in parents), row
        last_parent = max(parent["completed_at"] for parent in parents)
        assert first_start[row["id"]] > last_parent, row
        assert row["started_at"] > last_parent, row
        assert runs[row["id"]]["parents_completed"]
        assert runs[row["id"]]["parents"] == len(parents)
    print(f"jobs rerun after the kills: {rescued['n'] if rescued else 0}")
