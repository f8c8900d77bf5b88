"""The prospecting application's part of ``make demo``: the provider sandbox running in the
demo's process (unless ``PROSPECTING_PLACES_URL`` points elsewhere) and a first campaign
of the demo user, which the demo's worker runs against it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Generator

import psycopg
import uvicorn
from rich.console import Console

from prospecting.sandbox import Sandbox, SandboxConfig

DEMO_USER = "estimator"
"""The demo's user key belongs to this user (nightcrew_apps.demo)."""
SANDBOX_LATENCY_MS = 200.0
_servers: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []


class _QuietServer(uvicorn.Server):
    """The sandbox's server inside the demo's event loop: the demo handles the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start_sandbox(console: Console) -> str:
    """Serve the sandbox (200 ms per call, 2 % errors, 1 % 429s) in this event loop and
    point the ``PROSPECTING_*_URL`` settings at it; returns its base URL."""
    port = _free_port()
    sandbox = Sandbox(SandboxConfig(latency_ms=SANDBOX_LATENCY_MS, error_rate=0.02,
                                    rate_429=0.01))  # fmt: skip
    server = _QuietServer(uvicorn.Config(sandbox.app, host="127.0.0.1", port=port,
                                         log_level="warning", lifespan="off"))  # fmt: skip
    task = asyncio.create_task(server.serve(), name="prospecting-sandbox")
    _servers.append((server, task))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    for name in ("places", "finder", "verifier"):
        os.environ[f"PROSPECTING_{name.upper()}_URL"] = f"{base}/{name}"
    console.print(f"prospecting provider sandbox on {base} (200 ms per call)")
    return base


async def stop() -> None:
    """Stop the sandbox gracefully (its calls in flight answered), once the demo's worker has
    stopped: cancelled with the event loop instead, a call still sleeping out its simulated
    latency ends in a logged traceback."""
    while _servers:
        server, task = _servers.pop()
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), 5)


async def prepare(url: str, console: Console, *, reload: bool, small: bool) -> None:
    """Start the sandbox (if no provider is configured) and, once, enqueue a first campaign
    for the demo user."""
    if not os.environ.get("PROSPECTING_PLACES_URL"):
        await start_sandbox(console)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM prospecting.campaigns")
        row = await cur.fetchone()
        if row and row[0] and not reload:
            console.print(f"prospecting: {row[0]} campaign(s) already there")
            return
        if row and row[0]:
            await conn.execute("TRUNCATE prospecting.campaigns CASCADE")
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT nightcrew.enqueue('prospecting.campaign', %s::jsonb, user_id => %s)",
                (json.dumps({"campaign_id": "00000000-0000-4000-8000-000000000001"}),
                 DEMO_USER),
            )  # fmt: skip
            job = await cur.fetchone()
            await conn.execute(
                "INSERT INTO prospecting.campaigns (id, user_id, job_id, business_type,"
                " location, max_results, budget) VALUES (%s, %s, %s, 'coffee shop',"
                " 'Austin, TX', 30, 5) ON CONFLICT (id) DO NOTHING",
                ("00000000-0000-4000-8000-000000000001", DEMO_USER, job[0] if job else None),
            )
    console.print("prospecting: a first campaign (coffee shops in Austin, $5 budget) queued")


def hints(base: str, user_key: str) -> list[str]:
    """What to try in the running demo."""
    auth = f'curl -H "Authorization: Bearer {user_key}"'
    return [
        f"Prospecting, look here first: log in at {base}/login with the user key, open "
        f"{base}/prospecting: a campaign is running against the sandbox (live bar and cost)",
        f"{auth} -H 'Content-Type: application/json' -d "
        f'\'{{"businessType": "dentist", "location": "Denver", "maxResults": 20, '
        f'"budget": 2}}\' {base}/api/prospecting/campaigns',
        f"{auth} {base}/api/prospecting/campaigns",
    ]
