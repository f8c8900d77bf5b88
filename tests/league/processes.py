"""Real processes of the league App: ``nightcrew serve`` web processes and a ``nightcrew
worker``, always reaped (their logs kept for failures)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from tests.http.conftest import free_port
from tests.league.conftest import FAST
from tests.procs import Processes, nightcrew_env
from tests.support import wait_until

APP = "league.app:app"


class LeagueProcesses(Processes):
    """Starts ``python -m nightcrew serve|worker --app league.app:app`` on one database."""

    def __init__(self, url: str, log_dir: Path) -> None:
        super().__init__(log_dir, "proc", stop_seconds=5)
        self.url = url

    def _start(self, *args: str) -> subprocess.Popen[bytes]:
        return self.launch("nightcrew", *args, "--app", APP, env=nightcrew_env(self.url, FAST))

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
