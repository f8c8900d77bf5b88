"""Real processes for the tests (``python -m nightcrew worker``, ``serve``, a supervisor):
the environment they start with, one log file each, and reaping that never leaves one
running after its test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]

FAST_WORKER = {
    "lease_seconds": 2, "heartbeat_seconds": 0.5, "rescue_seconds": 0.5, "poll_seconds": 0.2,
    "migrate_on_start": False,
}  # fmt: skip
"""Worker settings for tests that kill workers: short leases, so that a lost worker's jobs
are rescued within a couple of seconds; the test database is migrated already."""


def setting_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """``settings`` as the ``NIGHTCREW_*`` variables a process reads them from."""
    return {
        f"NIGHTCREW_{name.upper()}": str(value).lower() if isinstance(value, bool) else str(value)
        for name, value in settings.items()
    }


def nightcrew_env(
    url: str, settings: Mapping[str, Any], *, drop: tuple[str, ...] = ("NIGHTCREW_",)
) -> dict[str, str]:
    """This process's environment less the variables starting with ``drop`` (the tests'
    own ``NIGHTCREW_*``), plus the database ``url`` and ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["NIGHTCREW_DATABASE_URL"] = url
    env.update(setting_env(settings))
    return env


def stop_all(procs: Iterable[subprocess.Popen[bytes]], timeout: float = 3) -> None:
    """SIGTERM every process still running, wait ``timeout`` seconds for each to exit,
    SIGKILL the ones that did not; all are waited for."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Processes:
    """``python -m ARGS`` processes run from the repository root, each writing to its own
    log in ``log_dir`` (``{name}-{n}.log``)."""

    def __init__(self, log_dir: Path, name: str = "worker", *, stop_seconds: float = 3) -> None:
        self.log_dir = log_dir
        self.name = name
        self.stop_seconds = stop_seconds
        """How long :meth:`reap` waits for a process to exit after SIGTERM."""
        self.procs: list[subprocess.Popen[bytes]] = []

    def launch(self, *args: str, env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        """Start ``python -m ARGS`` with exactly ``env``."""
        log = self.path(len(self.procs)).open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=REPO_ROOT, env=dict(env),
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self.procs.append(proc)
        return proc

    def path(self, index: int) -> Path:
        """The log file of the ``index``-th process started."""
        return self.log_dir / f"{self.name}-{index}.log"

    def log(self, proc: subprocess.Popen[bytes] | int) -> str:
        """Everything a process (or the ``index``-th) printed so far."""
        index = proc if isinstance(proc, int) else self.procs.index(proc)
        return self.path(index).read_text(errors="replace")

    def logs(self, tail: int = 3000) -> str:
        """The last ``tail`` characters each process printed, with its pid and exit code."""
        return "\n".join(
            f"--- {self.name} {proc.pid} exit {proc.returncode} ---\n{self.log(i)[-tail:]}"
            for i, proc in enumerate(self.procs)
        )

    def reap(self) -> None:
        """Stop every process still running (see :func:`stop_all`)."""
        stop_all(self.procs, self.stop_seconds)


P = TypeVar("P", bound=Processes)


@contextmanager
def reaped(procs: P, *, tail: int = 3000) -> Iterator[P]:
    """``procs`` for the block; then every one is stopped and its log printed (shown when
    the test failed)."""
    try:
        yield procs
    finally:
        procs.reap()
        print(procs.logs(tail))
