"""nightcrew processes the drills start: workers and the HTTP API, with their logs.

Each runs ``python -m nightcrew ... --app drills.apps:app`` from the repository root,
optionally inside a network namespace (``ip netns exec``), and is stopped by its own pid.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from drills.leftovers import OWNER_ENV, owner
from nightcrew.scheduler.leader import SCHEDULER_LOCK_KEY

REPO = Path(__file__).resolve().parents[1]
# Short leases: a lost host is noticed within seconds, as the drills' targets assume.
FAST: dict[str, Any] = {
    "lease_seconds": 3,
    "heartbeat_seconds": 0.5,
    "rescue_seconds": 1,
    "poll_seconds": 1,
    "shutdown_grace_seconds": 5,
    "migrate_on_start": "false",
}
# An error, or a prepared statement met on a pooled connection (a warning when it breaks
# a heartbeat: a statement prepared on one server connection of a transaction pooler).
BAD_LINE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|prepared statement")


class Processes:
    """The nightcrew processes of one drill; :meth:`stop_all` reaps every one."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []

    def _spawn(
        self, args: list[str], settings: dict[str, Any], name: str, netns: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTCREW_")}
        env.update({f"NIGHTCREW_{k.upper()}": str(v) for k, v in settings.items()})
        env.update(extra_env or {})
        env[OWNER_ENV] = owner()  # a killed drill's processes are found by this (leftovers.py)
        prefix = ["ip", "netns", "exec", netns] if netns else []
        path = self.log_dir / f"{name}-{len(self.procs)}.log"
        with path.open("wb") as log:
            proc = subprocess.Popen(
                [*prefix, sys.executable, "-m", "nightcrew", *args, "--app", "drills.apps:app"],
                cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        self.procs.append((proc, path))
        return proc

    def worker(
        self, settings: dict[str, Any], *, concurrency: int, netns: str | None = None,
        host: str | None = None, scheduler: bool = True,
    ) -> subprocess.Popen[bytes]:  # fmt: skip
        """Start ``nightcrew worker`` with ``settings`` (as NIGHTCREW_* variables)."""
        args = ["worker", "--concurrency", str(concurrency)]
        if not scheduler:
            args.append("--no-scheduler")
        return self._spawn(args, {**FAST, **settings}, "worker", netns,
                           {"DRILL_HOST": host} if host else None)  # fmt: skip

    def api(self, settings: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
        """Start ``nightcrew serve`` on 127.0.0.1:``port``."""
        return self._spawn(["serve", "--port", str(port)], {**FAST, **settings}, "api")

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        """What ``proc`` printed so far."""
        path = next(p for q, p in self.procs if q is proc)
        return path.read_text(errors="replace")

    def bad_lines(self) -> list[str]:
        """Error lines (ERROR, CRITICAL, tracebacks) in every process's log."""
        return [line for _, path in self.procs
                for line in path.read_text(errors="replace").splitlines()
                if BAD_LINE.search(line)]  # fmt: skip

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
        """SIGTERM ``proc`` and wait (SIGKILL past ``timeout``)."""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        """Stop every process still running."""
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.procs:
            self.stop(proc)


def scalar(url: str, statement: str, params: Any = None) -> Any:
    """First column of the first row, on a fresh connection."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(statement, params).fetchone()
    return None if row is None else row[0]


def wait_for(condition: Any, timeout: float, what: str, step: float = 0.05) -> float:
    """Poll ``condition()`` until truthy; return seconds waited; raise after ``timeout``."""
    begin = time.monotonic()
    while not condition():
        if time.monotonic() - begin > timeout:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - begin


def wait_registered(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """Wait until every worker process has a row in ``nightcrew.workers``."""
    pids = [p.pid for p in procs]

    def registered() -> bool:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"worker {proc.pid} exited with {proc.returncode}")
        found = scalar(url, "SELECT count(DISTINCT pid) FROM nightcrew.workers"
                            " WHERE pid = ANY(%s)", (pids,))  # fmt: skip
        return bool(found == len(pids))

    wait_for(registered, timeout, "workers to register", 0.1)


def scheduler_leaders(url: str) -> int:
    """Processes holding the scheduler's leader lock (the advisory lock itself, not merely a
    connection named like the leader's: followers open one for a moment to try the lock)."""
    return int(scalar(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                           " AND granted AND objsubid = 1"
                           " AND ((classid::bigint << 32) | objid::bigint) = %s",
                      (SCHEDULER_LOCK_KEY,)))  # fmt: skip


def wait_listening(url: str, count: int, timeout: float = 30) -> None:
    """Wait until ``count`` workers have LISTEN connections (their wake-ups are heard)."""
    listening = "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN nightcrew_queues'"
    wait_for(lambda: scalar(url, listening) >= count, timeout, "workers to LISTEN", 0.1)
