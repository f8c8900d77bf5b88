"""``make demo`` (``python -m nightcrew_apps.demo``) as a real process: one App hosting every
application of apps/, with estimating's demo data loaded and where to look printed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from nightcrew_apps import APPLICATIONS, build_app
from tests.http.conftest import free_port
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]


def test_the_demo_app_hosts_every_application() -> None:
    app = build_app("postgresql://nobody@127.0.0.1:1/never_connected")
    assert app.applications == [application.name for application in APPLICATIONS]
    assert "estimating" in app.applications
    assert ("estimating", "estimating") in app.migration_sets


def test_make_demo_loads_the_data_serves_every_application_and_stops(demo_db: str) -> None:
    db_url = demo_db
    port = free_port()
    env = {**os.environ, "NIGHTCREW_DATABASE_URL": db_url, "COLUMNS": "300"}
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
            assert "loaded 150 items" in output
            base = f"http://127.0.0.1:{port}"
            assert f"Dashboard: {base}/" in output
            assert f"{base}/estimating" in output
            assert f"{base}/workspace" in output and "3 editors" in output
            found = re.search(r"User API key:\s+(nck_\S+)", output)
            assert found, output
            trend = httpx.get(f"{base}/api/estimating/items/REBAR-12MM/price-trend?months=6",
                              headers={"Authorization": f"Bearer {found.group(1)}"},
                              timeout=10)  # fmt: skip
            assert trend.status_code == 200, trend.text
            demo.send_signal(signal.SIGINT)
            assert demo.wait(timeout=30) == 0
        finally:
            if demo.poll() is None:
                demo.kill()
                demo.wait()
            reader.join(timeout=10)
    assert "stopped" in "".join(lines)
