"""Drill 2: three worker hosts (network namespaces), one cut off, then all of them.

Each host runs a worker process (with its scheduler) over a stream of checkpointed jobs
(``drill.steps``: every step's effect row and the checkpoint naming the next step commit in
one lease-fenced transaction). Phase 1 cuts one host's link while it holds leased jobs and
measures cut -> every one of them running again on another host (target: lease + rescue
interval + 2 s); the link comes back and the cut host's late writes must be refused. Phase
2 cuts every host from PostgreSQL for 20 s: the workers keep what they hold, reconnect, and
nothing is lost. At the end every job has completed and every step's effect exists once.

    python -m drills.partition [--outage 20]
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from drills.apps import EFFECTS_DDL
from drills.infra import Cluster, postgres_missing, private_cluster
from drills.leftovers import owned_tempdir, prepare
from drills.netns import Host, hosts, netns_missing
from drills.procs import FAST, Processes, scalar, wait_for, wait_registered
from drills.report import Figure, skipped
from nightcrew import App
from nightcrew.db.migrate import migrate

DRILL = "partition"
DBNAME = "nightcrew_drill"
STEPS = 10
LEASE = float(FAST["lease_seconds"])
RESCUE = float(FAST["rescue_seconds"])
# What nightcrew needs from the server for a host that vanishes (docs/operations.md): dead
# client connections are noticed in seconds, and a transaction left open by a cut host
# (holding its job's row lock, so no rescue could take the job) is ended within a lease:
# a host cut in the middle of a step's transaction is then rescued as soon as one cut
# between two transactions (the drill's transactions are never idle for long).
SERVER_SETTINGS = {
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "idle_in_transaction_session_timeout": f"'{FAST['lease_seconds']}s'",
}


class Producer:
    """Enqueues ``drill.steps`` jobs at ``rate`` per second until stopped."""

    def __init__(self, url: str, rate: float) -> None:
        self.app = App(url, migrate_on_start=False, strict_types=False)
        self.rate = rate
        self.ids: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1 / self.rate):
            payload = {"steps": STEPS, "pause": 0.15}
            self.ids.append(str(self.app.enqueue("drill.steps", payload)))

    @contextlib.contextmanager
    def running(self) -> Iterator[Producer]:
        """Produce while the block runs."""
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(10)
            self.app.close()


def worker_ids(url: str) -> dict[int, str]:
    """pid -> worker id of the live workers."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, id FROM nightcrew.workers").fetchall()
    return {int(pid): str(wid) for pid, wid in rows}


def held_by(url: str, worker_id: str) -> list[str]:
    """Ids of the jobs ``worker_id`` holds a lease on."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT id::text FROM nightcrew.jobs WHERE status = 'processing'"
                            " AND worker_id = %s", (worker_id,)).fetchall()  # fmt: skip
    return [row[0] for row in rows]


def running_elsewhere(url: str, ids: list[str], lost: str) -> bool:
    """Whether every job of ``ids`` runs on (or was finished by) another worker."""
    stuck = scalar(url, "SELECT count(*) FROM nightcrew.jobs WHERE id = ANY(%s::uuid[])"
                        " AND NOT ((status = 'processing' AND worker_id <> %s)"
                        "          OR status = 'completed')", (ids, lost))  # fmt: skip
    return bool(stuck == 0)


def db_now(url: str) -> Any:
    """The server's clock."""
    return scalar(url, "SELECT clock_timestamp()")


def cut_one_host(url: str, host: Host, worker_id: str) -> dict[str, Any]:
    """Phase 1: cut ``host`` while it holds jobs; measure their rescue; restore the link."""
    wait_for(lambda: len(held_by(url, worker_id)) >= 2, 60, "the host to hold jobs", 0.05)
    held = held_by(url, worker_id)
    cut_at = db_now(url)
    began = time.monotonic()
    host.cut()
    try:
        rescued = wait_for(lambda: running_elsewhere(url, held, worker_id), 60,
                           "the cut host's jobs to run elsewhere")  # fmt: skip
        time.sleep(2.0)  # the host stays cut a little longer: its handlers run on
    finally:
        host.restore()
    restored = time.monotonic() - began
    # The cut host comes back, notices its leases are gone and stops those handlers.
    wait_for(lambda: scalar(url, "SELECT heartbeat_at > %s FROM nightcrew.workers"
                                 " WHERE id = %s", (cut_at, worker_id)),
             60, "the cut host to heartbeat again", 0.1)  # fmt: skip
    late = scalar(url, "SELECT count(*) FROM drill.effects e JOIN nightcrew.jobs j"
                       " ON j.id = e.job_id WHERE e.job_id = ANY(%s::uuid[]) AND e.host = %s"
                       " AND e.at > %s", (held, f"h{host.index}", cut_at))  # fmt: skip
    return {"held": len(held), "rescued_s": rescued, "cut_s": restored, "late_writes": late}


def cut_all_hosts(url: str, all_hosts: list[Host], outage: float) -> dict[str, Any]:
    """Phase 2: PostgreSQL unreachable from every host for ``outage`` s; measure the
    reconnect (every worker heartbeating again) and who finished the jobs held at the cut."""
    wids = list(worker_ids(url).values())
    with psycopg.connect(url, autocommit=True) as conn:
        held: dict[str, str] = dict(conn.execute("SELECT id::text, worker_id FROM nightcrew.jobs"
                                 " WHERE status = 'processing'").fetchall())  # fmt: skip
    for host in all_hosts:
        host.cut()
    try:
        time.sleep(outage)
    finally:
        for host in all_hosts:
            host.restore()
    back_at = db_now(url)
    reconnect = wait_for(lambda: scalar(url, "SELECT count(*) FROM nightcrew.workers"
                                             " WHERE id = ANY(%s) AND heartbeat_at > %s",
                                        (wids, back_at)) == len(wids),
                         120, "every worker to heartbeat again", 0.1)  # fmt: skip
    return {"held": held, "reconnect_s": reconnect}


def kept_by_holder(url: str, held: dict[str, str]) -> int:
    """How many of the jobs held at the outage were finished by the worker holding them."""
    if not held:
        return 0
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT id::text, worker_id, attempts FROM nightcrew.jobs"
                            " WHERE id = ANY(%s::uuid[])", (list(held),)).fetchall()  # fmt: skip
    # A job the outage did not interrupt completes in the attempt that held it at the cut.
    return sum(1 for job_id, _w, attempts in rows if attempts == 1 and job_id in held)


def check_exactly_once(url: str, ids: list[str]) -> dict[str, int]:
    """Jobs not completed, (job, step) effects missing, and ones written more than once."""
    with psycopg.connect(url, autocommit=True) as conn:
        unfinished = conn.execute("SELECT count(*) FROM nightcrew.jobs WHERE id = ANY(%s::uuid[])"
                                  " AND status <> 'completed'", (ids,)).fetchone()  # fmt: skip
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE n = 0), count(*) FILTER (WHERE n > 1) FROM ("
            " SELECT j.id, s.step, count(e.job_id) AS n"
            " FROM unnest(%s::uuid[]) AS j(id) CROSS JOIN generate_series(0, %s - 1) AS s(step)"
            " LEFT JOIN drill.effects e ON e.job_id = j.id AND e.step = s.step"
            " GROUP BY 1, 2) c", (ids, STEPS)).fetchone()  # fmt: skip
    assert unfinished is not None and counts is not None
    return {"unfinished": unfinished[0], "missing": counts[0], "duplicated": counts[1]}


@contextlib.contextmanager
def drill_stack(all_hosts: list[Host], log_dir: Path) -> Iterator[tuple[Cluster, Processes]]:
    """The private cluster (listening on every host link) and one worker per host."""
    listen = ",".join(["127.0.0.1", *(h.outside for h in all_hosts)])
    with private_cluster(listen, SERVER_SETTINGS) as cluster:
        url = cluster.url(DBNAME)
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DBNAME}")
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(EFFECTS_DDL)
        procs = Processes(log_dir)
        try:
            workers = [procs.worker({"database_url": cluster.url(DBNAME, host=h.outside)},
                                    concurrency=4, netns=h.netns, host=f"h{h.index}")
                       for h in all_hosts]  # fmt: skip
            wait_registered(url, workers)
            yield cluster, procs
        finally:
            procs.stop_all()


def run(args: argparse.Namespace) -> list[Figure]:
    """Run the drill; return its figures (one SKIPPED row when it cannot run here)."""
    prepare(DRILL)
    reason = netns_missing() or postgres_missing()
    if reason:
        return [skipped(DRILL, reason)]
    with (
        owned_tempdir("logs") as logs,
        hosts(3) as all_hosts,
        drill_stack(all_hosts, Path(logs)) as (cluster, procs),
    ):
        url = cluster.url(DBNAME)
        first_pid = procs.procs[0][0].pid
        with Producer(url, rate=6).running() as producer:
            one = cut_one_host(url, all_hosts[0], worker_ids(url)[first_pid])
            time.sleep(3)
            everyone = cut_all_hosts(url, all_hosts, args.outage)
            time.sleep(3)
        ids = producer.ids
        wait_for(lambda: check_exactly_once(url, ids)["unfinished"] == 0, 180,
                 "every job to complete", 0.25)  # fmt: skip
        result = check_exactly_once(url, ids)
        kept = kept_by_holder(url, everyone["held"])
        # Evidence that the cut host tried and was told no (heartbeat, save, or outcome).
        refused = procs.log(procs.procs[0][0]).count("lease lost")
    target = LEASE + RESCUE + 2
    return [
        Figure(DRILL, "jobs through the drill", str(len(ids))),
        Figure(DRILL, "cut host: jobs held at the cut", str(one["held"])),
        Figure(DRILL, "cut -> all running elsewhere", f"{one['rescued_s']:.1f} s",
               f"<= {target:g} s", one["rescued_s"] <= target),
        Figure(DRILL, "cut host: late writes accepted", str(one["late_writes"]), "0",
               one["late_writes"] == 0),
        Figure(DRILL, "cut host: 'lease lost' refusals logged", str(refused)),
        Figure(DRILL, f"{args.outage:g} s outage: reconnect", f"{everyone['reconnect_s']:.1f} s",
               "<= 10 s", everyone["reconnect_s"] <= 10),
        Figure(DRILL, f"{args.outage:g} s outage: held jobs kept by holder",
               f"{kept} of {len(everyone['held'])}"),
        Figure(DRILL, "jobs not completed", str(result["unfinished"]), "0",
               result["unfinished"] == 0),
        Figure(DRILL, "step effects missing", str(result["missing"]), "0",
               result["missing"] == 0),
        Figure(DRILL, "step effects written twice", str(result["duplicated"]), "0",
               result["duplicated"] == 0),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This drill's command-line flags."""
    parser.add_argument("--outage", type=float, default=20.0,
                        help="seconds PostgreSQL is unreachable from every host")  # fmt: skip


def main() -> None:
    """``python -m drills.partition``."""
    from drills.report import table

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(table(run(parser.parse_args())))


if __name__ == "__main__":
    main()
