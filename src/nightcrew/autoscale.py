"""``nightcrew worker --autoscale MIN:MAX``: worker processes started and stopped by load.

A supervisor process measures the backlog of its queues (runnable jobs) and the age of the
oldest runnable job every ``autoscale_check_seconds``, and keeps between MIN and MAX
``nightcrew worker`` child processes running. Hysteresis keeps it from flapping: it adds a
process when more jobs wait than the running processes have slots, or when the oldest has
waited ``autoscale_up_age_seconds``; it removes one (SIGTERM: running jobs finish first)
only after nothing has waited for ``autoscale_idle_seconds``; and it changes the count by
one at most every ``autoscale_step_seconds``. A child that dies is replaced.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App

log = logging.getLogger("nightcrew.autoscale")

# Counting a backlog beyond this many jobs changes no decision.
BACKLOG_CAP = 1_000_000


def parse_bounds(text: str) -> tuple[int, int]:
    """``"MIN:MAX"`` -> (MIN, MAX); ValueError naming what is wrong."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"expected MIN:MAX (two whole numbers, e.g. 1:4), got {text!r}")
    low, high = int(parts[0]), int(parts[1])
    if low < 1 or high < low:
        raise ValueError(f"need 1 <= MIN <= MAX, got {low}:{high}")
    return low, high


@dataclass(frozen=True)
class ScalePolicy:
    """Bounds and thresholds of autoscaling."""

    minimum: int
    maximum: int
    slots: int  # jobs one process runs at once (its concurrency)
    up_age_seconds: float = 5.0
    idle_seconds: float = 30.0
    step_seconds: float = 5.0


@dataclass(frozen=True)
class Load:
    """What the queues look like now."""

    backlog: int
    oldest_age: float


class Autoscaler:
    """Decides how many worker processes should run; keeps the state its hysteresis needs."""

    def __init__(self, policy: ScalePolicy) -> None:
        self.policy = policy
        self._last_change = float("-inf")
        self._idle_since: float | None = None

    def decide(self, current: int, load: Load, now: float) -> int:
        """The number of processes to run, given ``current`` ones, ``load`` and the time."""
        p = self.policy
        if current < p.minimum or current > p.maximum:
            return self._change(min(max(current, p.minimum), p.maximum), now)
        if load.backlog > 0:
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = now
        if now - self._last_change < p.step_seconds:
            return current
        if current < p.maximum and self._behind(current, load):
            return self._change(current + 1, now)
        idle_for = 0.0 if self._idle_since is None else now - self._idle_since
        if current > p.minimum and idle_for >= p.idle_seconds:
            self._idle_since = now  # the next step down needs another idle period
            return self._change(current - 1, now)
        return current

    def _behind(self, current: int, load: Load) -> bool:
        """More jobs wait than the running processes have slots, or one waited too long."""
        waited_too_long = load.backlog > 0 and load.oldest_age >= self.policy.up_age_seconds
        return load.backlog > current * self.policy.slots or waited_too_long

    def _change(self, target: int, now: float) -> int:
        self._last_change = now
        return target


def measure_load(url: str, queues: list[str]) -> Load:
    """The backlog and oldest runnable job's age of ``queues``."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query("autoscale_load"), {"queues": queues, "cap": BACKLOG_CAP},
                           prepare=False).fetchone()  # fmt: skip
    assert row is not None
    return Load(int(row[0]), float(row[1]))


class Supervisor:
    """Runs ``command`` (a ``nightcrew worker`` command line) as many times as the
    :class:`Autoscaler` decides, until :meth:`stop`."""

    def __init__(self, app: App, command: list[str], policy: ScalePolicy,
                 queues: list[str]) -> None:  # fmt: skip
        self.app = app
        self.command = command
        self.queues = queues
        self.scaler = Autoscaler(policy)
        self.children: list[subprocess.Popen[bytes]] = []
        self._leaving: list[subprocess.Popen[bytes]] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        """Stop scaling; every child gets SIGTERM and is waited for."""
        self._stop.set()

    def run(self) -> None:
        """Scale until :meth:`stop`, then stop the children."""
        interval = self.app.settings.autoscale_check_seconds
        try:
            while not self._stop.is_set():
                self._step()
                self._stop.wait(interval)
        finally:
            self._stop_all()

    def _step(self) -> None:
        self._reap()
        try:
            load = measure_load(self.app.direct_url, self.queues)
        except psycopg.Error as exc:
            log.warning("autoscale: cannot read the backlog (%s); keeping %d workers",
                        exc, len(self.children))  # fmt: skip
            load = None
        current = len(self.children)
        target = current if load is None else self.scaler.decide(current, load, time.monotonic())
        if current == 0 and load is None:
            target = self.scaler.policy.minimum  # start up even while the database is away
        for _ in range(target - current):
            self.children.append(subprocess.Popen(self.command, stdin=subprocess.DEVNULL))
        for _ in range(current - target):
            child = self.children.pop()  # the newest goes first
            child.send_signal(signal.SIGTERM)
            self._leaving.append(child)
        if target != current and load is not None:
            log.info("autoscale: %d -> %d workers (backlog %d, oldest waiting %.1fs)",
                     current, target, load.backlog, load.oldest_age)  # fmt: skip

    def _reap(self) -> None:
        """Forget children that exited (a dead one is replaced by the next decision)."""
        for child in [c for c in self.children if c.poll() is not None]:
            log.warning("autoscale: worker %d exited with %s", child.pid, child.returncode)
            self.children.remove(child)
        self._leaving = [c for c in self._leaving if c.poll() is None]

    def _stop_all(self) -> None:
        everyone = self.children + self._leaving
        for child in everyone:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        grace = self.app.settings.shutdown_grace_seconds + 10
        for child in everyone:
            try:
                child.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children, self._leaving = [], []


def policy_from(app: App, bounds: tuple[int, int], slots: int) -> ScalePolicy:
    """The policy of ``app``'s settings for ``bounds``, ``slots`` jobs per process."""
    s = app.settings
    return ScalePolicy(bounds[0], bounds[1], slots, s.autoscale_up_age_seconds,
                       s.autoscale_idle_seconds, s.autoscale_step_seconds)  # fmt: skip


def install_signal_handlers(supervisor: Supervisor) -> None:
    """SIGTERM/SIGINT stop the supervisor (and so its children)."""

    def on_signal(_sig: int, _frame: Any) -> None:
        supervisor.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
