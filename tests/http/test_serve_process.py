"""``nightcrew serve`` as a real process: uvloop and httptools loaded, the access log off
unless ``--access-log`` asks for it (a line per request costs CPU on every request)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.http.conftest import free_port
from tests.procs import Processes, nightcrew_env, reaped
from tests.support import wait_until

APP = "tests.faults.apps:app"
ACCESS_LINE = '"GET /api/jobs HTTP/1.1" 401'


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    with reaped(Processes(tmp_path, "serve")) as started:
        yield started


def start_serve(procs: Processes, url: str, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``nightcrew serve``; return it and its base URL once it answers."""
    port = free_port()
    env = nightcrew_env(url, {"migrate_on_start": False})
    proc = procs.launch("nightcrew", "serve", "--app", APP, "--port", str(port), *flags, env=env)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.poll() is None, procs.logs()
        try:
            httpx.get(f"{base}/api/jobs", timeout=1)  # no key: 401, logged or not
            return True
        except httpx.HTTPError:
            return False

    wait_until(answers, 30, f"nightcrew serve on port {port}")
    return proc, base


def loaded_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_serve_runs_uvloop_and_httptools_without_an_access_log(
    procs: Processes, db_url: str
) -> None:
    proc, base = start_serve(procs, db_url)
    maps = loaded_libraries(proc.pid)
    assert "uvloop" in maps and "httptools" in maps
    assert httpx.get(f"{base}/api/jobs", timeout=10).status_code == 401
    procs.reap()  # exited: everything it wrote is in its log
    log = procs.log(proc)
    assert "Uvicorn running on" in log  # the log is captured at all
    assert ACCESS_LINE not in log


def test_serve_access_log_on_request(procs: Processes, db_url: str) -> None:
    proc, base = start_serve(procs, db_url, "--access-log", "--loop", "asyncio", "--http", "h11")
    assert httpx.get(f"{base}/api/jobs", timeout=10).status_code == 401
    wait_until(lambda: ACCESS_LINE in procs.log(proc), 15, "the access log line")
    maps = loaded_libraries(proc.pid)
    assert "httptools" not in maps  # --http h11 was passed through to uvicorn
