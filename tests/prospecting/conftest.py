"""Prospecting fixtures: the provider sandbox as a real process, the module's database with
the prospecting schema, a prospecting App pointed at the sandbox, API keys, an HTTP client
on the App's ASGI app, and a trigger that records every progress change of every job."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from nightcrew import App
from nightcrew.db.migrate import migrate
from nightcrew.http import create_app
from nightcrew.keys import create_key
from prospecting.app import build_app
from prospecting.settings import ProspectingSettings, load_settings
from tests.http.conftest import free_port
from tests.procs import nightcrew_env
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]
FAST = {
    "migrate_on_start": False, "lease_seconds": 2, "heartbeat_seconds": 0.5,
    "poll_seconds": 0.2, "rescue_seconds": 0.5, "shutdown_grace_seconds": 5,
}  # fmt: skip
FAST_RATES = {"places": "20/s", "finder": "50/s", "verifier": "50/s"}
"""Rates high enough not to slow the functional tests (the limit tests set their own)."""

PROGRESS_LOG = """
CREATE TABLE IF NOT EXISTS public.progress_log (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id uuid, attempt integer, progress real, stage text, metrics jsonb, status text);
CREATE OR REPLACE FUNCTION public.log_progress() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.progress IS DISTINCT FROM OLD.progress OR NEW.stage IS DISTINCT FROM OLD.stage
       OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO public.progress_log (job_id, attempt, progress, stage, metrics, status)
        VALUES (NEW.id, NEW.attempts, NEW.progress, NEW.stage, NEW.metrics, NEW.status::text);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS log_progress ON nightcrew.jobs;
CREATE TRIGGER log_progress AFTER UPDATE ON nightcrew.jobs
    FOR EACH ROW EXECUTE FUNCTION public.log_progress();
"""


class SandboxProcess:
    """``python -m prospecting.sandbox`` running on a free port."""

    def __init__(self, log: Path, **options: Any) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "prospecting.sandbox", "--port", str(self.port)]
        for name, value in options.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=out,
                                         stdin=subprocess.DEVNULL)  # fmt: skip
        wait_until(self.ready, 20, "the sandbox to listen")

    def ready(self) -> bool:
        """Whether it answers (fails the test if it died)."""
        if self.proc.poll() is not None:
            raise AssertionError(f"sandbox exited: {self.log.read_text()}")
        try:
            return httpx.get(f"{self.base}/_stats", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stats(self) -> dict[str, Any]:
        """What it saw per provider (see prospecting.sandbox)."""
        body: dict[str, Any] = httpx.get(f"{self.base}/_stats", timeout=5).json()
        return body

    def reset(self) -> None:
        """Forget the traffic seen so far."""
        httpx.post(f"{self.base}/_reset", timeout=5).raise_for_status()

    def env(self, rates: dict[str, str] | None = None) -> dict[str, str]:
        """``PROSPECTING_*`` settings pointing at this sandbox."""
        env = {f"PROSPECTING_{p.upper()}_URL": f"{self.base}/{p}" for p in FAST_RATES}
        for name, rate in (rates or FAST_RATES).items():
            env[f"PROSPECTING_{name.upper()}_RATE"] = rate
        return env

    def settings(self, rates: dict[str, str] | None = None) -> ProspectingSettings:
        """The providers' settings pointing at this sandbox."""
        return load_settings({**self.env(rates), "PROSPECTING_TIMEOUT": "5"})

    def stop(self) -> None:
        """Stop the process and wait for it."""
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """The sandbox as the issue's campaign test wants it: 100 ms per call, 5 % errors,
    2 % 429s (Retry-After 1 s)."""
    process = SandboxProcess(tmp_path_factory.mktemp("sandbox") / "sandbox.log",
                             latency_ms=100, error_rate=0.05, rate_429=0.02,
                             retry_after=1)  # fmt: skip
    yield process
    process.stop()


@pytest.fixture(scope="module")
def pro_db(db_url: str) -> str:
    """The module's database with the prospecting migrations and the progress log."""
    migrate(db_url, package="prospecting", schema="prospecting")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(PROGRESS_LOG)
    return db_url


@pytest.fixture
def pro_clean(pro_db: str, sandbox: SandboxProcess) -> str:
    """The prospecting tables, the job queue and the sandbox's counters emptied."""
    with psycopg.connect(pro_db, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE prospecting.campaigns, prospecting.businesses, prospecting.calls,"
            " public.progress_log, nightcrew.jobs, nightcrew.workers RESTART IDENTITY CASCADE"
        )
    sandbox.reset()
    return pro_db


@pytest.fixture
async def pro_app(pro_clean: str, sandbox: SandboxProcess) -> AsyncIterator[App]:
    """A prospecting App on the clean database, its providers the sandbox."""
    instance = build_app(pro_clean, prospecting=sandbox.settings(), **FAST)
    yield instance
    await instance.aclose()


@dataclass
class Api:
    """An HTTP client on the App's ASGI application and API keys per user."""

    client: httpx.AsyncClient
    keys: dict[str, str]

    def auth(self, who: str) -> dict[str, str]:
        """The Authorization header of ``who``."""
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def submit(self, who: str, **body: Any) -> httpx.Response:
        """POST a campaign as ``who``."""
        payload = {"businessType": "coffee shop", "location": "Austin", "maxResults": 20,
                   **body}  # fmt: skip
        return await self.client.post("/api/prospecting/campaigns", json=payload,
                                      headers=self.auth(who))  # fmt: skip


@pytest.fixture
async def api(pro_app: App) -> AsyncIterator[Api]:
    """Keys for alice and bob, and a client of the App's HTTP API."""
    with psycopg.connect(pro_app.url, autocommit=True) as conn:
        keys = {who: create_key(conn, who, actor="test")[1] for who in ("alice", "bob")}
    transport = httpx.ASGITransport(app=create_app(pro_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Api(client, keys)


def progress_of(url: str, job_id: object) -> list[tuple[int, float, str | None, str]]:
    """Every recorded (attempt, progress, stage, status) change of a job, in order."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT attempt, progress, stage, status FROM public.progress_log"
            " WHERE job_id = %s ORDER BY seq", (job_id,),
        ).fetchall()  # fmt: skip
    return [(r[0], float(r[1]), r[2], r[3]) for r in rows]


def worker_env(
    url: str, sandbox: SandboxProcess, rates: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a worker process of ``prospecting.app:app`` on ``url``."""
    env = nightcrew_env(url, FAST, drop=("NIGHTCREW_", "PROSPECTING_"))
    env.update(sandbox.env(rates))
    return env
