"""``make demo``: the estimating app end to end in one process.

Starts the embedded PostgreSQL (unless ``NIGHTCREW_DATABASE_URL`` is set), migrates, loads
the demo data (once; ``--reload`` replaces it), creates an admin and a user API key, then
runs a worker, the scheduler and the HTTP server until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator

import psycopg
import uvicorn
from rich.console import Console

from estimating.app import build_app
from estimating.demo_data import load_demo
from nightcrew.http import create_app
from nightcrew.keys import create_key
from nightcrew.scheduler import Scheduler


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops everything together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def _prepare(url: str, reload: bool, console: Console) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM estimating.items")
        row = await cur.fetchone()
        if row and row[0] and not reload:
            console.print(f"demo data already loaded ({row[0]} items; --reload to replace)")
            return
        if row and row[0]:
            await conn.execute(
                "TRUNCATE estimating.catalogue, estimating.items, estimating.projects,"
                " estimating.usage, estimating.usage_archive, estimating.weekly_reports"
                " RESTART IDENTITY CASCADE"
            )
        with console.status("generating demo data (1,000 items, 200 projects, 20,000 estimates)"):
            counts = await load_demo(conn)
        console.print(
            f"loaded {counts['items']} items, {counts['projects']} projects, "
            f"{counts['estimates']} estimates, {counts['usage']} usage rows, "
            f"{counts['snapshot_days']} price snapshots in {counts['seconds']} s "
            f"(steel +22 % from {counts['spike_month']})"
        )


def _keys(url: str) -> tuple[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        _, admin = create_key(conn, "admin", admin=True, actor="demo")
        _, user = create_key(conn, "estimator", actor="demo")
    return admin, user


async def main(host: str, port: int, reload: bool) -> None:
    """Run the demo until SIGINT/SIGTERM."""
    console = Console()
    # The demo serves plain http on a loopback address: let the dashboard cookie go
    # without Secure there (only there: any other host still gets a Secure cookie).
    app = build_app(dev_insecure_cookies=True)
    with console.status("starting the database and migrating"):
        url = await asyncio.to_thread(lambda: app.url)
        await asyncio.to_thread(app.migrate)
    await _prepare(url, reload, console)
    admin, user = await asyncio.to_thread(_keys, url)
    api = create_app(app)
    server = _Server(uvicorn.Config(api, host=host, port=port, log_level="warning"))
    worker = app.worker()
    scheduler = Scheduler(app)

    def stop() -> None:
        server.should_exit = True
        worker.stop()
        scheduler.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    tasks = [
        asyncio.create_task(worker.run(), name="worker"),
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(server.serve(), name="http"),
    ]
    base = f"http://{host}:{port}"
    # create_app always serves the dashboard at / and the OpenAPI docs at /docs.
    console.print(f"\n[bold]Dashboard:[/] {base}/   (API docs: {base}/docs)")
    console.print(f"[bold]Admin API key:[/] {admin}")
    console.print(f"[bold]User API key:[/]  {user}")
    console.print(
        "Try:\n"
        f'  curl -H "Authorization: Bearer {user}" '
        f"'{base}/api/estimating/suggestions?items=CONC-C25'\n"
        f'  curl -H "Authorization: Bearer {user}" '
        f"'{base}/api/estimating/items/CONC-C25/price-trend?months=6'\n"
        f'  curl -H "Authorization: Bearer {user}" '
        f"'{base}/api/estimating/items/REBAR-12MM/price-trend?months=6'\n"
        "Ctrl-C to stop."
    )
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        await app.aclose()
    console.print("stopped")


def cli() -> None:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(prog="python -m estimating.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reload", action="store_true", help="replace the loaded demo data")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main(args.host, args.port, args.reload))


if __name__ == "__main__":
    cli()
