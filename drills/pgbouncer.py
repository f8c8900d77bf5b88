"""Drill 1: workers, scheduler and HTTP API through PgBouncer in transaction mode.

A private PostgreSQL cluster, PgBouncer (``pool_mode = transaction``, 20 server
connections) in front of it, and the same run in two modes: straight to PostgreSQL with the
connection budget split between the processes (20 pooled connections in all), and through
PgBouncer with 200 client connections (``WORKERS`` x ``CONCURRENCY`` job slots, each able to
hold a pooled connection) multiplexed onto its 20. LISTEN, the fetch connections and the
leader lock use ``direct_url`` in both. Figures: drain rate (two drains per mode, in the
order direct, pgbouncer, pgbouncer, direct), pickup p50/p99 (HTTP enqueue -> handler
start), errors in any log, peak server connections of the pool.

    python -m drills.pgbouncer [--jobs 4000] [--pickups 200]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from drills.apps import EFFECTS_DDL
from drills.infra import (
    Bouncer,
    Cluster,
    free_port,
    pgbouncer,
    pgbouncer_missing,
    postgres_missing,
    private_cluster,
    wait_for_port,
)
from drills.leftovers import owned_tempdir, prepare
from drills.procs import (
    Processes,
    scalar,
    scheduler_leaders,
    wait_for,
    wait_listening,
    wait_registered,
)
from drills.report import Figure, percentile, skipped, table
from nightcrew import App
from nightcrew.db.migrate import migrate
from nightcrew.keys import create_key

DRILL = "pgbouncer"
DBNAME = "nightcrew_drill"
SERVER_CONNECTIONS = 20
WORKERS = 4
CONCURRENCY = 50  # x WORKERS = 200 job slots


@dataclass
class Run:
    """What one mode (direct or pgbouncer) measured."""

    mode: str
    drain_per_s: float = 0.0
    pickups_ms: list[float] = field(default_factory=list)
    peak_server_conns: int = 0
    peak_clients: int = 0
    errors: list[str] = field(default_factory=list)
    leaders: int = 0
    duplicates: int = 0


def prepare_database(cluster: Cluster) -> str:
    """Create and migrate the drill database; return its direct URL."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DBNAME}")
        conn.execute(f"CREATE DATABASE {DBNAME}")
    url = cluster.url(DBNAME)
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(EFFECTS_DDL)
    return url


class PoolSampler:
    """Samples PgBouncer's SHOW POOLS every 100 ms: peak server sessions and clients."""

    def __init__(self, bouncer: Bouncer | None) -> None:
        self.bouncer = bouncer
        self.peak_servers = 0
        self.peak_clients = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PoolSampler:
        if self.bouncer is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        assert self.bouncer is not None
        with psycopg.connect(self.bouncer.url("pgbouncer"), autocommit=True) as conn:
            while not self._stop.wait(0.1):
                rows = conn.execute("SHOW POOLS", prepare=False).fetchall()
                for row in rows:
                    if row[0] != DBNAME:
                        continue
                    # cl_active, cl_waiting; sv_active, sv_idle, sv_used, sv_tested. Not
                    # sv_login: PgBouncer (1.18+) opens connections beyond the pool size,
                    # up to twice, to forward cancel requests (a client cancelling its query,
                    # as psycopg does on a timeout); they never become sessions. One such
                    # login was seen as a 21st connection under a load average of 18.
                    self.peak_clients = max(self.peak_clients, row[2] + row[3])
                    servers = row[6] + row[9] + row[10] + row[11]
                    self.peak_servers = max(self.peak_servers, servers)


def settings_for(mode: str, direct: str, bouncer: Bouncer) -> dict[str, Any]:
    """Worker and API settings of ``mode``: the same budget of 20 pooled server connections."""
    if mode == "direct":
        # 4 workers x 4 + the API's 4 = 20 connections straight to PostgreSQL.
        return {"database_url": direct, "pool_max_size": SERVER_CONNECTIONS // (WORKERS + 1)}
    # Through PgBouncer: a pooled connection per job slot, 20 server connections behind.
    return {"database_url": bouncer.url(DBNAME), "direct_url": direct,
            "pool_max_size": CONCURRENCY}  # fmt: skip


@contextlib.contextmanager
def running_stack(
    mode: str, direct: str, bouncer: Bouncer, log_dir: Path
) -> Iterator[tuple[Processes, str]]:
    """Workers (with their schedulers) and the HTTP API of ``mode``; yields (procs, api URL)."""
    procs = Processes(log_dir)
    settings = settings_for(mode, direct, bouncer)
    try:
        port = free_port()
        procs.api(settings, port)
        workers = [procs.worker(settings, concurrency=CONCURRENCY) for _ in range(WORKERS)]
        wait_for_port("127.0.0.1", port, 30)
        wait_registered(direct, workers)
        yield procs, f"http://127.0.0.1:{port}"
    finally:
        procs.stop_all()


def measure_pickups(direct: str, api: str, key: str, count: int) -> list[float]:
    """Enqueue ``count`` jobs over HTTP, 20 ms apart, onto idle workers; return each job's
    enqueue-request -> handler-start time in ms."""
    sent: dict[str, float] = {}
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"},
                      timeout=30) as client:  # fmt: skip
        for _ in range(count):
            began = time.time()
            reply = client.post("/api/jobs", json={"type": "drill.effect", "payload": {}})
            reply.raise_for_status()
            sent[reply.json()["id"]] = began
            time.sleep(0.02)
    wait_for(lambda: effects(direct, list(sent)) >= count, 60, "pickup jobs to run", 0.1)
    with psycopg.connect(direct, autocommit=True) as conn:
        rows = conn.execute("SELECT job_id::text, min(started) FROM drill.effects"
                            " WHERE job_id = ANY(%s::uuid[]) GROUP BY 1",
                            (list(sent),)).fetchall()  # fmt: skip
    return [(started - sent[job_id]) * 1000 for job_id, started in rows]


def effects(url: str, ids: list[str]) -> int:
    """Distinct jobs among ``ids`` that wrote their effect."""
    return int(scalar(url, "SELECT count(DISTINCT job_id) FROM drill.effects"
                           " WHERE job_id = ANY(%s::uuid[])", (ids,)))  # fmt: skip


def measure_drain(direct: str, jobs: int) -> float:
    """Enqueue ``jobs`` (each a fenced effect write and 20 ms of waiting) at once; return
    jobs/s from the enqueue to the last one completed."""
    app = App(direct, migrate_on_start=False, strict_types=False)
    try:
        items = [{"type": "drill.effect", "payload": {"sleep": 0.02}} for _ in range(jobs)]
        began = time.monotonic()
        app.enqueue_many(items)
        left = ("SELECT count(*) FROM nightcrew.jobs WHERE type = 'drill.effect'"
                " AND status <> 'completed'")  # fmt: skip
        wait_for(lambda: scalar(direct, left) == 0, 300, "the drain", 0.05)
        return jobs / (time.monotonic() - began)
    finally:
        app.close()


def run_mode(mode: str, direct: str, bouncer: Bouncer, key: str, args: argparse.Namespace,
             log_dir: Path, *, pickups: bool) -> Run:  # fmt: skip
    """One run of ``mode``: pickups (when asked), then a drain, sampling the pool throughout."""
    with psycopg.connect(direct, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.jobs, drill.effects")
    result = Run(mode)
    sampler = PoolSampler(bouncer if mode == "pgbouncer" else None)
    with running_stack(mode, direct, bouncer, log_dir) as (procs, api), sampler:
        wait_listening(direct, WORKERS)  # pickups measure wake-up, not start-up
        if pickups:
            result.pickups_ms = measure_pickups(direct, api, key, args.pickups)
        result.drain_per_s = measure_drain(direct, args.jobs)
        result.leaders = scheduler_leaders(direct)
    result.peak_server_conns = sampler.peak_servers
    result.peak_clients = sampler.peak_clients
    result.errors = procs.bad_lines()
    if mode == "pgbouncer":
        result.errors += [line for line in bouncer.log_text().splitlines() if " ERROR " in line]
    result.duplicates = int(scalar(direct, "SELECT count(*) FROM (SELECT job_id FROM"
                                   " drill.effects GROUP BY 1 HAVING count(*) > 1) d"))  # fmt: skip
    return result


def merged(runs: list[Run]) -> Run:
    """The runs of one mode as one: drain rate over their drains together (same jobs each),
    the pickups measured, every error and duplicate, the worst leader count, peak pool use."""
    out = Run(runs[0].mode)
    out.drain_per_s = len(runs) / sum(1 / r.drain_per_s for r in runs)
    out.pickups_ms = [ms for r in runs for ms in r.pickups_ms]
    out.errors = [line for r in runs for line in r.errors]
    out.duplicates = sum(r.duplicates for r in runs)
    out.leaders = next((r.leaders for r in runs if r.leaders != 1), 1)
    out.peak_server_conns = max(r.peak_server_conns for r in runs)
    out.peak_clients = max(r.peak_clients for r in runs)
    return out


def figures(direct: Run, pooled: Run) -> list[Figure]:
    """The drill's rows of the report table."""
    rows = []
    for run in (direct, pooled):
        rows += [
            Figure(DRILL, f"{run.mode}: drain (2 runs)", f"{run.drain_per_s:,.0f} jobs/s"),
            Figure(DRILL, f"{run.mode}: pickup p50/p99",
                   f"{percentile(run.pickups_ms, 50):.1f} / "
                   f"{percentile(run.pickups_ms, 99):.1f} ms"),
            Figure(DRILL, f"{run.mode}: errors in logs", str(len(run.errors)), "0",
                   not run.errors),
            Figure(DRILL, f"{run.mode}: scheduler leaders", str(run.leaders), "1",
                   run.leaders == 1),
            Figure(DRILL, f"{run.mode}: jobs with two effects", str(run.duplicates), "0",
                   run.duplicates == 0),
        ]  # fmt: skip
    rows += [
        Figure(DRILL, "pgbouncer: peak client conns (pool)", str(pooled.peak_clients),
               f"> {SERVER_CONNECTIONS}", pooled.peak_clients > SERVER_CONNECTIONS),
        Figure(DRILL, "pgbouncer: peak server conns (pool)", str(pooled.peak_server_conns),
               f"<= {SERVER_CONNECTIONS}", pooled.peak_server_conns <= SERVER_CONNECTIONS),
        Figure(DRILL, "pgbouncer/direct drain", f"{pooled.drain_per_s / direct.drain_per_s:.2f}x",
               ">= 0.5x", pooled.drain_per_s >= 0.5 * direct.drain_per_s, gates=False),
    ]  # fmt: skip
    return rows


def run(args: argparse.Namespace) -> list[Figure]:
    """Run the drill; return its figures (one SKIPPED row when it cannot run here)."""
    prepare(DRILL)
    reason = pgbouncer_missing() or postgres_missing()
    if reason:
        return [skipped(DRILL, reason)]
    with owned_tempdir("logs") as logs, \
            private_cluster() as cluster:  # fmt: skip
        direct = prepare_database(cluster)
        with psycopg.connect(direct, autocommit=True) as conn:
            key = create_key(conn, "drill", actor="drill")[1]
        with pgbouncer(cluster.host, cluster.port, pool_size=SERVER_CONNECTIONS) as bouncer:
            # A B B A: the machine's load drifting during the drill weighs on both modes
            # alike (on a shared machine it moved the ratio by half between runs).
            order = [("direct", True), ("pgbouncer", True), ("pgbouncer", False),
                     ("direct", False)]  # fmt: skip
            done = [run_mode(mode, direct, bouncer, key, args, Path(logs), pickups=pickups)
                    for mode, pickups in order]  # fmt: skip
        runs = [merged([r for r in done if r.mode == mode]) for mode in ("direct", "pgbouncer")]
        for r in runs:
            for line in r.errors[:20]:
                print(f"[{r.mode}] {line}")
        return figures(*runs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This drill's command-line flags."""
    parser.add_argument("--jobs", type=int, default=4000, help="jobs of the drain")
    parser.add_argument("--pickups", type=int, default=200, help="jobs of the pickup run")


def main() -> None:
    """``python -m drills.pgbouncer``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(table(run(parser.parse_args())))


if __name__ == "__main__":
    main()
