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


def test_queues_and_limits_commands(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.queue_pauses, nightcrew.limits")
    paused = nightcrew(clean_db, "queues", "pause", "reports")
    assert paused.returncode == 0 and paused.stdout.strip() == "reports: paused"
    again = nightcrew(clean_db, "queues", "pause", "reports")
    assert again.stdout.strip() == "reports: was paused already"
    listed = nightcrew(clean_db, "queues", "list", "--json")
    assert next(q for q in json.loads(listed.stdout) if q["name"] == "reports")["paused"]
    assert "PAUSED" in nightcrew(clean_db, "queues", "list").stdout
    assert nightcrew(clean_db, "queues", "resume", "reports").stdout.strip() == "reports: resumed"

    set_ = nightcrew(clean_db, "limits", "set", "places", "--rate", "10/s", "--concurrency", "3")
    assert set_.returncode == 0, set_.stderr
    assert set_.stdout.strip() == "places: rate 10/s, concurrency 3 (override)"
    (info,) = json.loads(nightcrew(clean_db, "limits", "list", "--json").stdout)
    assert (info["key"], info["rate"], info["concurrency"], info["overridden"]) == (
        "places", "10/s", 3, True,
    )  # fmt: skip
    cleared = nightcrew(clean_db, "limits", "clear", "places")
    assert cleared.stdout.strip() == "places: override cleared"

    bad = nightcrew(clean_db, "limits", "set", "places", "--rate", "lots")
    assert bad.returncode == 2 and "rate must look like" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad_queue = nightcrew(clean_db, "queues", "pause", "no spaces allowed")
    assert bad_queue.returncode == 2 and "queue name" in bad_queue.stderr
    missing = nightcrew(clean_db, "limits", "set")
    assert missing.returncode != 0 and "needs a limit key" in missing.stderr
