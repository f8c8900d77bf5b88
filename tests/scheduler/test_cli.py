"""``nightcrew schedules list|enable|disable|run|set`` and ``worker --no-scheduler``."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from nightcrew import App
from nightcrew.cli import build_parser, main

SPEC = "tests.scheduler.apps:app"


@pytest.fixture
def cli_app(sched_db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The CLI test app, bound to this module's database."""
    monkeypatch.setenv("NIGHTCREW_DATABASE_URL", sched_db)
    monkeypatch.setenv("NIGHTCREW_MAINTENANCE_SCHEDULES", "false")
    module = importlib.reload(importlib.import_module("tests.scheduler.apps"))
    yield module.app
    module.app.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--app", SPEC])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_schedules_commands(
    cli_app: App, capsys: pytest.CaptureFixture[str], db_conn: psycopg.Connection[Any]
) -> None:
    assert run(capsys, "schedules", "list")[1].startswith("no schedules stored yet")
    cli_app.sync_schedules()
    code, out, _ = run(capsys, "schedules", "list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["every-second", "nightly"]
    assert "0 2 * * * (Europe/London)" in out
    assert all(line.endswith("7d 0 ok 0 failed") for line in out.splitlines())  # last 7 days
    code, out, _ = run(capsys, "schedules", "disable", "nightly")
    assert code == 0 and out.startswith("nightly: disabled")
    listed = json.loads(run(capsys, "schedules", "list", "--json")[1])
    assert {s["name"]: s["enabled"] for s in listed} == {"every-second": True, "nightly": False}
    assert run(capsys, "schedules", "enable", "nightly")[1].startswith("nightly: enabled")
    code, out, _ = run(capsys, "schedules", "run", "nightly")
    job_id = UUID(out.strip())
    row = db_conn.execute(
        "SELECT schedule_name, type FROM nightcrew.jobs WHERE id = %s", (job_id,)
    ).fetchone()
    assert code == 0 and row == ("nightly", "tick.noop")
    code, out, _ = run(capsys, "schedules", "set", "nightly", "--cron", "15 4 * * *")
    assert code == 0 and "15 4 * * * (Europe/London)" in out
    code, _, err = run(capsys, "schedules", "run", "nope")
    assert code == 2 and "error: no schedule named 'nope'" in err
    code, _, err = run(capsys, "schedules", "set", "nightly", "--cron", "0 2 * *")
    assert code == 2 and "has 4 fields" in err
    with pytest.raises(SystemExit, match="needs a schedule name"):
        main(["schedules", "disable", "--app", SPEC])


def test_worker_runs_the_scheduler_unless_told_not_to() -> None:
    parser = build_parser()
    assert parser.parse_args(["worker"]).no_scheduler is False
    assert parser.parse_args(["worker", "--no-scheduler"]).no_scheduler is True
