"""The workspace App as a worker process of the snapshot crash test runs it: when
``WORKSPACE_TEST_PAUSE_FILE`` is set, each snapshot transaction, with its snapshot
written and its updates deleted but not committed, creates that file and waits there,
so the test can SIGKILL the worker mid-snapshot. Settings come from ``NIGHTCREW_*``."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from nightcrew import App
from workspace.app import install

PAUSE_FILE = os.environ.get("WORKSPACE_TEST_PAUSE_FILE")


async def pause_before_commit() -> None:
    """Announce the open transaction, then hold it (until the worker is killed)."""
    assert PAUSE_FILE
    Path(PAUSE_FILE).write_text(str(os.getpid()))
    await asyncio.sleep(3600)


app = App()
install(app, before_snapshot_commit=pause_before_commit if PAUSE_FILE else None)
