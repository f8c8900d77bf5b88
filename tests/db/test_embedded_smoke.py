"""Smoke test of the whole engine on the embedded default (PostgreSQL 18), whatever
server the rest of the suite uses."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nightcrew import App, JobContext, JobStatus
from nightcrew.db import embedded

pytestmark = pytest.mark.embedded


async def test_enqueue_and_run_on_the_embedded_server() -> None:
    base = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="nightcrew-smoke-"))
    base.chmod(0o755)
    data_dir = base / "pg"
    try:
        url = embedded.start(data_dir)
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW server_version_num").fetchone()
            assert row is not None and int(row[0]) >= 180000
        app = App(url)  # migrates on first use

        @app.job("smoke.double")
        async def double(ctx: JobContext, payload: dict[str, Any]) -> dict[str, int]:
            async with ctx.transaction():
                await ctx.save(progress=50, checkpoint={"half": True})
            return {"value": payload["n"] * 2}

        ids = await app.aenqueue_many(
            [{"type": "smoke.double", "payload": {"n": n}} for n in range(20)]
        )
        assert await app.worker(concurrency=5).run_until_idle(timeout=30) == 20
        jobs = [await app.aget_job(i) for i in ids]
        assert all(j is not None and j.status is JobStatus.COMPLETED for j in jobs)
        assert [j.result["value"] for j in jobs if j] == [n * 2 for n in range(20)]
        await app.aclose()
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(base, ignore_errors=True)
