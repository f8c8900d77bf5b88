"""``make demo``: one App hosting every application of ``apps/``, end to end in one process.

Starts the embedded PostgreSQL (unless ``NIGHTCREW_DATABASE_URL`` is set), migrates, loads
each application's demo data (once; ``--reload`` replaces it), creates an admin and a user
API key, then runs a worker, the scheduler and the HTTP server until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import Generator

import uvicorn
from rich.console import Console

from nightcrew import App, Scheduler, create_api_key
from nightcrew.http import create_app
from nightcrew_apps import APPLICATIONS, build_app


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the demo stops everything together."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def prepare_data(app: App, console: Console, *, reload: bool, small: bool) -> None:
    """Migrate, then load every application's demo data."""
    with console.status("starting the database and migrating"):
        url = await asyncio.to_thread(lambda: app.url)
        await asyncio.to_thread(app.migrate)
    for application in APPLICATIONS:
        if application.demo is not None:
            await application.demo.prepare(url, console, reload=reload, small=small)


def create_keys(app: App) -> tuple[str, str]:
    """A new admin key and a new user key (the secrets)."""
    with app.pool().connection() as conn:
        _, admin = create_api_key(conn, "admin", admin=True, actor="demo")
        _, user = create_api_key(conn, "estimator", actor="demo")
    return admin, user


def print_where_to_look(console: Console, base: str, admin: str, user: str) -> None:
    """The dashboard, the keys and each application's requests to try."""
    # create_app always serves the dashboard at / and the OpenAPI docs at /docs.
    console.print(f"\n[bold]Dashboard:[/] {base}/   (API docs: {base}/docs)")
    console.print(f"[bold]Admin API key:[/] {admin}")
    console.print(f"[bold]User API key:[/]  {user}   (estimator: owns every third project)")
    console.print("Try:")
    for application in APPLICATIONS:
        for line in application.demo.hints(base, user) if application.demo else []:
            console.print(f"  {line}", soft_wrap=True)
    console.print("Ctrl-C to stop.")


async def main(host: str, port: int, *, reload: bool, small: bool) -> None:
    """Run the demo until SIGINT/SIGTERM."""
    console = Console()
    # The demo serves plain http on a loopback address: let the dashboard cookie go
    # without Secure there (only there: any other host still gets a Secure cookie).
    # A short shutdown grace: long jobs (a prospecting campaign, a bulk update) are
    # checkpointed, so one cut short at Ctrl-C resumes where it was at the next start.
    app = build_app(dev_insecure_cookies=True, shutdown_grace_seconds=5)
    await prepare_data(app, console, reload=reload, small=small)
    admin, user = await asyncio.to_thread(create_keys, app)
    server = _Server(uvicorn.Config(create_app(app), host=host, port=port, log_level="warning"))
    worker = app.worker()
    scheduler = Scheduler(app)

    tasks = [
        asyncio.create_task(worker.run(), name="worker"),
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(server.serve(), name="http"),
    ]
    stopping: list[asyncio.Task[None]] = []

    async def stop_server_last() -> None:
        # The server's shutdown closes the App's pools: only once the worker has let its
        # running jobs finish and written their outcomes (else it retries them forever).
        await asyncio.gather(*tasks[:2], return_exceptions=True)
        server.should_exit = True

    def stop() -> None:
        worker.stop()
        scheduler.stop()
        if not stopping:
            stopping.append(asyncio.create_task(stop_server_last(), name="stop-http"))

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        # Say where to look once the server listens (or something already ended).
        while not server.started and not any(task.done() for task in tasks):
            await asyncio.sleep(0.02)
        if server.started:
            print_where_to_look(console, f"http://{host}:{port}", admin, user)
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        stop()
        await asyncio.gather(*tasks, *stopping, return_exceptions=True)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for application in APPLICATIONS:
            if application.demo is not None:
                await application.demo.stop()
        await app.aclose()
    console.print("stopped")


def cli() -> None:
    """Parse the command line and run the demo."""
    parser = argparse.ArgumentParser(prog="python -m nightcrew_apps.demo", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--reload", action="store_true", help="replace the loaded demo data")
    parser.add_argument("--small", action="store_true", help="load a small demo data set")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(main(args.host, args.port, reload=args.reload, small=args.small))


if __name__ == "__main__":
    cli()
