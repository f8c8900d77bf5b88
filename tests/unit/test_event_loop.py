"""``nightcrew worker`` runs its loop on uvloop when the optional extra is installed."""

from __future__ import annotations

import asyncio
import sys

import pytest

from nightcrew.cli import run_event_loop


async def record_loop_module(seen: list[str]) -> None:
    seen.append(type(asyncio.get_running_loop()).__module__)


def test_the_worker_loop_is_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    seen: list[str] = []
    run_event_loop(record_loop_module(seen))
    assert seen and seen[0].startswith("uvloop")


def test_the_worker_loop_is_asyncio_without_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # `import uvloop` raises ImportError
    seen: list[str] = []
    run_event_loop(record_loop_module(seen))
    assert seen and seen[0].startswith("asyncio")
