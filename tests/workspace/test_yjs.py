"""Yjs collaboration state: appended updates, the merged state, snapshots that fold and
delete updates in one transaction (the newest 5 kept), and a worker SIGKILLed in the
middle of a snapshot (a real worker process) losing and duplicating nothing."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from uuid import UUID

import pytest

from nightcrew import App
from nightcrew.testing import drain
from tests.procs import FAST_WORKER, Processes, nightcrew_env, reaped
from tests.support import wait_until
from tests.workspace.helpers import client, insert_documents, rows, scalar
from workspace import collab
from workspace.yjs import KEEP_SNAPSHOTS

SNAPSHOT = "workspace.snapshot_documents"
OCTETS = {"content-type": "application/octet-stream"}


async def test_state_after_snapshots_equals_the_state_of_all_updates(
    ws_app: App, ws_clean: str, keys: dict[str, str]
) -> None:
    updates, expected = collab.session(editors=3, rounds=12)
    async with client(ws_app, keys["alice"]) as http:
        doc = (await http.post("/api/workspace/documents", json={"title": "shared"})).json()
        url = f"/api/workspace/documents/{doc['id']}"
        chunks = [updates[i : i + 5] for i in range(0, len(updates), 5)]
        for chunk in chunks:  # a snapshot after every 5 updates: 8 snapshots, 5 kept
            for update in chunk:
                sent = await http.post(f"{url}/updates", content=update, headers=OCTETS)
                assert sent.status_code == 201, sent.text
            await ws_app.aenqueue(SNAPSHOT, {})
            await drain(ws_app, queues=["workspace"])
            state = await http.get(f"{url}/state")
            assert state.status_code == 200
            assert state.headers["content-type"] == "application/octet-stream"
        assert collab.text_of(state.content) == expected
    assert scalar(ws_clean, "SELECT count(*) FROM workspace.doc_updates") == 0
    assert scalar(ws_clean, "SELECT count(*) FROM workspace.doc_snapshots") == KEEP_SNAPSHOTS
    sizes = rows(
        ws_clean,
        "SELECT length(state), raw_bytes FROM workspace.doc_snapshots ORDER BY id DESC LIMIT 1",
    )
    assert sizes[0][0] < sizes[0][1]  # compressed and merged


async def test_snapshots_are_scheduled_every_five_minutes(ws_app: App) -> None:
    ws_app.sync_schedules()
    [schedule] = [s for s in await ws_app.aschedules_list() if s.type == SNAPSHOT]
    assert schedule.cron == "*/5 * * * *"


def start_worker(procs: Processes, url: str, pause_file: Path | None) -> subprocess.Popen[bytes]:
    env = nightcrew_env(url, FAST_WORKER)
    env.pop("WORKSPACE_TEST_PAUSE_FILE", None)
    if pause_file:
        env["WORKSPACE_TEST_PAUSE_FILE"] = str(pause_file)
    return procs.launch(
        "nightcrew", "worker", "--app", "tests.workspace.crash_app:app", "--queues", "workspace",
        "--concurrency", "1", env=env,
    )  # fmt: skip


@pytest.mark.timeout(120)
async def test_a_worker_killed_mid_snapshot_loses_and_duplicates_no_update(
    ws_app: App, ws_clean: str, tmp_path: Path
) -> None:
    updates, expected = collab.session(editors=3, rounds=8)
    [doc] = insert_documents(ws_clean, "alice", [("crash", "")])
    pool = await ws_app.apool()

    async def append(batch: list[bytes]) -> None:
        async with pool.connection() as conn:
            for update in batch:
                await conn.execute(
                    "INSERT INTO workspace.doc_updates (document_id, owner,"
                    " \"update\") VALUES (%s, 'alice', %s)",
                    (doc, update),
                )

    await append(updates[:20])
    job = await ws_app.aenqueue(SNAPSHOT, {})
    pause = tmp_path / "paused"
    with reaped(Processes(tmp_path, stop_seconds=10)) as procs:
        first = start_worker(procs, ws_clean, pause)
        wait_until(pause.exists, 30, "the snapshot transaction to be open")
        await append(updates[20:])  # editors keep typing meanwhile
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        # Nothing of the open transaction is visible: every update is still pending.
        assert scalar(ws_clean, "SELECT count(*) FROM workspace.doc_updates") == len(updates)
        assert scalar(ws_clean, "SELECT count(*) FROM workspace.doc_snapshots") == 0
        start_worker(procs, ws_clean, None)

        def completed() -> bool:
            status = scalar(
                ws_clean, "SELECT status::text FROM nightcrew.jobs WHERE id = %s", (job,)
            )
            return status == "completed"

        wait_until(completed, 60, "the snapshot job to be retried and complete")
    snapshots = rows(ws_clean, "SELECT updates FROM workspace.doc_snapshots")
    pending = scalar(ws_clean, "SELECT count(*) FROM workspace.doc_updates")
    # Every update is either in the one snapshot or still pending, none in both.
    assert len(snapshots) == 1 and snapshots[0][0] + pending == len(updates)
    assert scalar(ws_clean, "SELECT attempts FROM nightcrew.jobs WHERE id = %s", (job,)) >= 2
    async with pool.connection() as conn:
        from workspace import yjs

        state = await yjs.state(conn, UUID(doc))
    assert collab.text_of(state) == expected
