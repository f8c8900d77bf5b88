"""The ``nightcrew`` command line, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psycopg

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def nightcrew(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NIGHTCREW_DATABASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "nightcrew", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_enqueue_list_show_cancel_retry(clean_db: str) -> None:
    out = nightcrew(
        clean_db,
        "enqueue",
        "reports.weekly",
        '{"week": 12}',
        "--priority",
        "3",
        "--dedupe-key",
        "w12",
    )
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()
    again = nightcrew(clean_db, "enqueue", "reports.weekly", "{}", "--dedupe-key", "w12")
    assert again.stdout.strip() == job_id

    listing = nightcrew(clean_db, "jobs", "list")
    assert job_id in listing.stdout and "pending" in listing.stdout

    shown = nightcrew(clean_db, "jobs", "show", job_id)
    job = json.loads(shown.stdout)
    assert (job["payload"], job["priority"], job["status"]) == ({"week": 12}, 3, "pending")

    assert nightcrew(clean_db, "jobs", "cancel", job_id).returncode == 0
    twice = nightcrew(clean_db, "jobs", "cancel", job_id)
    assert twice.returncode == 1 and "cannot be cancelled: it is cancelled" in twice.stderr
    unknown = nightcrew(clean_db, "jobs", "retry", "01a00000-0000-7000-8000-000000000000")
    assert unknown.returncode == 1 and "no such job" in unknown.stderr
    assert nightcrew(clean_db, "jobs", "retry", job_id).returncode == 0
    assert json.loads(nightcrew(clean_db, "jobs", "show", job_id).stdout)["status"] == "pending"


def test_bad_input_gives_a_message_not_a_traceback(clean_db: str) -> None:
    bad_json = nightcrew(clean_db, "enqueue", "x", "{not json")
    assert bad_json.returncode != 0 and "not valid JSON" in bad_json.stderr
    bad_delay = nightcrew(clean_db, "enqueue", "x", "{}", "--delay", "-5")
    assert bad_delay.returncode == 2 and "delay must not be negative" in bad_delay.stderr
    missing = nightcrew(clean_db, "jobs", "show", "01a2e5d3-0000-7000-8000-000000000000")
    assert missing.returncode == 1 and "no job" in missing.stderr
    for result in (bad_json, bad_delay, missing):
        assert "Traceback" not in result.stderr
    with psycopg.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM nightcrew.jobs").fetchone() == (0,)


def test_migrate_and_db_url(clean_db: str) -> None:
    out = nightcrew(clean_db, "migrate")
    assert out.returncode == 0 and "up to date" in out.stdout
    assert nightcrew(clean_db, "db-url").stdout.strip() == clean_db
