"""A worker freezes the objects alive at its start out of the cyclic collector's full
passes, once per process, unless the ``gc_freeze`` setting is off."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import asyncio, gc, sys
from nightcrew import App
from nightcrew.heap import freeze_startup_heap

async def main() -> None:
    app = App(sys.argv[1], migrate_on_start=False, gc_freeze=sys.argv[2] == "on")
    before = gc.get_freeze_count()
    for _ in range(2):
        await app.worker().run_until_idle(timeout=10)
    # Whether the process's freeze was still to do after two workers.
    print(before, gc.get_freeze_count(), int(freeze_startup_heap()))
    await app.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("setting", ["on", "off"])
def test_a_worker_freezes_the_startup_heap_once_unless_off(db_url: str, setting: str) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, db_url, setting], check=True,
                         capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    before, frozen, still_to_do = map(int, out.split())
    assert before == 0
    if setting == "off":
        assert (frozen, still_to_do) == (0, 1)
    else:
        assert frozen > 10_000  # the imported modules and the App, at least
        assert still_to_do == 0  # done once, by the first worker
