"""Drill 3: the primary dies under load and its synchronous standby is promoted.

Two private clusters (``pg_basebackup -R``, ``synchronous_standby_names``: a commit is
acknowledged only once the standby has it). The HTTP API and two workers (each with its
scheduler) use one multi-host URL with ``target_session_attrs=read-write``. While a client
enqueues over HTTP and the workers drain, the primary is SIGKILLed and, a second later (a
failover manager's detection time), the standby is promoted. Everything must reconnect on
its own; every enqueue that returned an id must exist on the new primary; every effect
happens once; no job stays leased to a worker that lost its connection beyond one lease.

    python -m drills.failover [--http-rate 40] [--detect 1.0]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from drills.apps import EFFECTS_DDL
from drills.infra import (
    Cluster,
    free_port,
    postgres_missing,
    private_cluster,
    standby_of,
    wait_for_port,
)
from drills.leftovers import owned_tempdir, prepare
from drills.procs import FAST, Processes, scalar, scheduler_leaders, wait_for, wait_registered
from drills.report import Figure, say, skipped, table
from nightcrew.db.migrate import migrate
from nightcrew.keys import create_key

DRILL = "failover"
DBNAME = "nightcrew_drill"
LEASE = float(FAST["lease_seconds"])
SERVER_SETTINGS = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "idle_in_transaction_session_timeout": "'5s'",
    "wal_keep_size": "'256MB'",
}


@dataclass
class Client:
    """Enqueues over HTTP at ``rate`` per second; remembers what the API acknowledged."""

    api: str
    key: str
    rate: float
    acked: list[str] = field(default_factory=list)
    ok_times: list[float] = field(default_factory=list)
    failures: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Enqueue until :meth:`stop` (each request on its own, as independent clients)."""
        with httpx.Client(base_url=self.api, headers={"Authorization": f"Bearer {self.key}"},
                          timeout=10) as http:  # fmt: skip
            while not self._stop.wait(1 / self.rate):
                body = {"type": "drill.effect", "payload": {"sleep": 0.05}}
                try:
                    reply = http.post("/api/jobs", json=body)
                except httpx.HTTPError:
                    self.failures += 1
                    continue
                self.statuses[reply.status_code] = self.statuses.get(reply.status_code, 0) + 1
                if reply.status_code == 202:
                    self.acked.append(reply.json()["id"])
                    self.ok_times.append(time.monotonic())
                else:
                    self.failures += 1

    def stop(self) -> None:
        """Stop enqueueing."""
        self._stop.set()

    def outage_after(self, moment: float) -> float:
        """Longest gap between acknowledged enqueues around ``moment`` (the outage as this
        client saw it)."""
        before = max((t for t in self.ok_times if t <= moment), default=moment)
        after = min((t for t in self.ok_times if t > moment), default=float("inf"))
        return after - before


def multi_host_url(primary: Cluster, standby: Cluster) -> str:
    """One URL naming both servers; libpq takes the one that accepts writes."""
    return (f"postgresql://postgres@{primary.host}:{primary.port},{standby.host}:{standby.port}"
            f"/{DBNAME}?target_session_attrs=read-write&connect_timeout=2")  # fmt: skip


def make_synchronous(primary: Cluster, name: str) -> None:
    """Require the standby's acknowledgement of every commit from now on."""
    with psycopg.connect(primary.url(), autocommit=True) as conn:
        conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
        conn.execute("SELECT pg_reload_conf()")
    wait_for(lambda: scalar(primary.url(), "SELECT count(*) FROM pg_stat_replication"
                                           " WHERE sync_state = 'sync'") == 1,
             30, "the standby to be synchronous")  # fmt: skip


def stale_leases(url: str) -> int:
    """Jobs still leased although the lease ran out more than a lease ago."""
    return int(scalar(url, "SELECT count(*) FROM nightcrew.jobs WHERE status = 'processing'"
                           " AND lease_expires_at < now() - make_interval(secs => %s)",
                      (LEASE,)))  # fmt: skip


def run(args: argparse.Namespace) -> list[Figure]:
    """Run the drill; return its figures (one SKIPPED row when it cannot run here)."""
    prepare(DRILL)
    reason = postgres_missing()
    if reason:
        return [skipped(DRILL, reason)]
    with (
        owned_tempdir("logs") as logs,
        private_cluster(settings=SERVER_SETTINGS) as primary,
    ):
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DBNAME}")
        migrate(primary.url(DBNAME))
        with psycopg.connect(primary.url(DBNAME), autocommit=True) as conn:
            conn.execute(EFFECTS_DDL)
            key = create_key(conn, "drill", actor="drill")[1]
        say(DRILL, "primary up; taking a base backup for the standby")
        with standby_of(primary, name="standby", settings=SERVER_SETTINGS) as standby:
            make_synchronous(primary, "standby")
            say(DRILL, "standby streaming, synchronous")
            return failover(primary, standby, key, args, Path(logs))


def failover(primary: Cluster, standby: Cluster, key: str, args: argparse.Namespace,
             log_dir: Path) -> list[Figure]:  # fmt: skip
    """Load, kill the primary, promote the standby, and check what survived."""
    url = multi_host_url(primary, standby)
    new_primary = standby.url(DBNAME)
    procs = Processes(log_dir)
    try:
        port = free_port()
        procs.api({"database_url": url}, port)
        workers = [procs.worker({"database_url": url}, concurrency=20) for _ in range(2)]
        wait_for_port("127.0.0.1", port, 30)
        wait_registered(primary.url(DBNAME), workers)
        client = Client(f"http://127.0.0.1:{port}", key, args.http_rate)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        time.sleep(args.warmup)
        killed_at = time.monotonic()
        primary.kill()
        say(DRILL, f"primary SIGKILLed after {args.warmup:g} s of load")
        time.sleep(args.detect)  # a failover manager's time to decide the primary is gone
        standby.promote()
        promoted = time.monotonic() - killed_at
        say(DRILL, f"standby promoted {promoted:.1f} s after the kill")
        wids = [str(w) for w in scalar(new_primary, "SELECT array_agg(id) FROM nightcrew.workers")]
        stale_peak = 0
        deadline = time.monotonic() + args.after
        while time.monotonic() < deadline:
            stale_peak = max(stale_peak, stale_leases(new_primary))
            time.sleep(0.2)
        client.stop()
        thread.join(15)
        say(DRILL, "load stopped; checking the new primary")
        back = wait_for(lambda: scalar(new_primary, "SELECT count(*) FROM nightcrew.workers"
                                       " WHERE id = ANY(%s) AND heartbeat_at > now() - interval"
                                       " '2 seconds'", (wids,)) == len(wids),
                        60, "every worker to heartbeat on the new primary")  # fmt: skip
        left = ("SELECT count(*) FROM nightcrew.jobs WHERE type = 'drill.effect'"
                " AND status <> 'completed'")  # fmt: skip
        wait_for(lambda: scalar(new_primary, left) == 0, 120, "every job to complete", 0.2)
        # One scheduler takes the lock on the new primary within its poll interval.
        with contextlib.suppress(TimeoutError):
            wait_for(lambda: scheduler_leaders(new_primary) == 1, 30, "a scheduler leader")
        leaders = scheduler_leaders(new_primary)
        lost = scalar(
            new_primary,
            "SELECT count(*) FROM unnest(%s::uuid[]) AS a(id)"
            " WHERE NOT EXISTS (SELECT 1 FROM nightcrew.jobs j WHERE j.id = a.id)",
            (client.acked,),
        )
        twice = scalar(
            new_primary,
            "SELECT count(*) FROM (SELECT job_id FROM drill.effects"
            " GROUP BY 1 HAVING count(*) > 1) d",
        )
        missing = scalar(
            new_primary,
            "SELECT count(*) FROM nightcrew.jobs j WHERE type ="
            " 'drill.effect' AND NOT EXISTS (SELECT 1 FROM drill.effects e"
            " WHERE e.job_id = j.id)",
        )
        outage = client.outage_after(killed_at)
    finally:
        procs.stop_all()
        say(DRILL, "processes stopped")
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(client.statuses.items()))
    return [
        Figure(DRILL, "enqueues acknowledged", str(len(client.acked))),
        Figure(DRILL, "kill -> standby promoted", f"{promoted:.1f} s",
               f"(detection {args.detect:g} s)"),
        Figure(DRILL, "outage seen by the HTTP client", f"{outage:.1f} s",
               "<= promotion + 5 s", outage <= promoted + 5),
        Figure(DRILL, "HTTP answers during the drill", statuses or "-"),
        Figure(DRILL, "acknowledged enqueues lost", str(lost), "0", lost == 0),
        Figure(DRILL, "workers heartbeating on new primary", f"{len(wids)} ({back:.1f} s later)",
               "all", True),
        Figure(DRILL, "scheduler leaders on new primary", str(leaders), "1", leaders == 1),
        Figure(DRILL, "effects written twice", str(twice), "0", twice == 0),
        Figure(DRILL, "jobs without their effect", str(missing), "0", missing == 0),
        Figure(DRILL, "leases expired > 1 lease ago (peak)", str(stale_peak), "0",
               stale_peak == 0),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This drill's command-line flags."""
    parser.add_argument("--http-rate", type=float, default=40, help="HTTP enqueues per second")
    parser.add_argument("--warmup", type=float, default=5, help="seconds of load before the kill")
    parser.add_argument("--detect", type=float, default=1.0, help="seconds before promotion")
    parser.add_argument("--after", type=float, default=10, help="seconds of load after it")


def main() -> None:
    """``python -m drills.failover``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(table(run(parser.parse_args())))


if __name__ == "__main__":
    main()
