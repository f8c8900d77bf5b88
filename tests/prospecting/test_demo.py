"""``make demo`` hosts prospecting with its sandbox and a first campaign, and stops cleanly
on Ctrl-C while that campaign runs: the worker hands the campaign back (to resume at the
next start) before the HTTP server's shutdown closes the App's pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import psycopg

from tests.http.conftest import free_port
from tests.prospecting.conftest import REPO
from tests.support import wait_until

DEMO_CAMPAIGN = "00000000-0000-4000-8000-000000000001"


def campaign_job(url: str) -> tuple[str, float] | None:
    """The demo campaign's job status and progress."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT j.status::text, j.progress FROM prospecting.campaigns c"
            " JOIN nightcrew.jobs j ON j.id = c.job_id WHERE c.id = %s", (DEMO_CAMPAIGN,),
        ).fetchone()  # fmt: skip
    return None if row is None else (row[0], float(row[1]))


def test_the_demo_runs_a_campaign_and_stops_cleanly_while_it_runs(demo_db: str) -> None:
    db_url = demo_db
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROSPECTING_")}
    env.update({"NIGHTCREW_DATABASE_URL": db_url, "COLUMNS": "300"})
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", "nightcrew_apps.demo", "--small", "--port", str(port)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as demo:  # fmt: skip
        reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
        reader.start()
        try:
            wait_until(lambda: any("Ctrl-C to stop" in line for line in lines) or demo.poll(),
                       60, "the demo to print where to look")  # fmt: skip
            output = "".join(lines)
            assert demo.poll() is None, output
            base = f"http://127.0.0.1:{port}"
            assert f"{base}/prospecting" in output
            assert "prospecting provider sandbox on http://127.0.0.1:" in output
            assert httpx.get(f"{base}/prospecting", timeout=10).status_code in (200, 303)

            def running() -> bool:
                state = campaign_job(db_url)
                return state is not None and state[0] == "processing" and state[1] > 10

            wait_until(running, 60, "the demo campaign to be discovering")
            demo.send_signal(signal.SIGINT)
            started = time.monotonic()
            assert demo.wait(timeout=25) == 0
            assert time.monotonic() - started < 15
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            reader.join(timeout=10)
    output = "".join(lines)
    assert "stopped" in output
    assert "writing outcomes failed" not in output, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
    state = campaign_job(db_url)
    assert state is not None and state[0] in ("pending", "retrying"), state
