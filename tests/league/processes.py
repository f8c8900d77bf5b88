"""Real processes of the league App: ``nightcrew serve`` web processes and a ``nightcrew
worker``, always reaped (their logs kept for failures)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.http.conftest import free_port
from tests.league.conftest import FAST
from tests.support import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "league.app:app"


class LeagueProcesses:
    """Starts ``python -m nightcrew serve|worker --app league.app:app`` on one database."""

    def __init__(self, url: str, log_dir: Path) -> None:
        self.url = url
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NIGHTCREW_")}
        env["NIGHTCREW_DATABASE_URL"] = self.url
        for name, value in FAST.items():
            env[f"NIGHTCREW_{name.upper()}"] = str(value).lower() if value is False else str(value)
        return env

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"proc-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "nightcrew", *args, "--app", APP],
            cwd=REPO_ROOT,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def web(self) -> str:
        """Start a web process; return its base URL once it answers."""
        port = free_port()
        proc = self._start("serve", "--port", str(port))
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"web process exited:\n{self.logs()}")
            try:
                return httpx.get(f"{base}/api/league/stats/hall_of_fame", timeout=1).is_success
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, f"the web process on port {port}")
        return base

    def worker(self, concurrency: int = 12) -> subprocess.Popen[bytes]:
        """Start a worker process."""
        return self._start("worker", "--concurrency", str(concurrency))

    def logs(self) -> str:
        """Every process's output so far."""
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.log_dir.glob("proc-*.log"))
        )

    def reap(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and wait for all of them."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def settings_env(**extra: Any) -> dict[str, str]:
    """``FAST`` as NIGHTCREW_* variables (for scripts)."""
    return {f"NIGHTCREW_{k.upper()}": str(v) for k, v in {**FAST, **extra}.items()}
