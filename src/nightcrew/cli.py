"""The ``nightcrew`` command line. Thin: every command calls the public API."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from typing import Any

from nightcrew.app import App
from nightcrew.errors import NightcrewError


def load_app(spec: str | None) -> App:
    """Import ``package.module:attribute``; without a spec, a producer-only App."""
    if not spec:
        return App(strict_types=False)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"--app must look like package.module:app, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise SystemExit(f"{spec!r} is not a nightcrew App")
    return app


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str))


# ---- commands ---------------------------------------------------------------------------


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = load_app(args.app).migrate()
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    print(load_app(args.app).url)
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from nightcrew.db import embedded

    if args.action == "start":
        print(embedded.start())
    elif args.action == "stop":
        print("stopped" if embedded.stop() else "not running")
    else:
        _print_json(embedded.status())
    return 0


def cmd_enqueue(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except json.JSONDecodeError as exc:
        raise SystemExit(f"payload is not valid JSON: {exc}") from None
    app = load_app(args.app)
    job_id = app.enqueue(
        args.type, payload, priority=args.priority, delay=args.delay, dedupe_key=args.dedupe_key
    )
    print(job_id)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.action == "list":
        for job in app.list_jobs(status=args.status, type=args.type, limit=args.limit):
            print(
                f"{job.id}  {job.status:<10} {job.type:<30} {job.progress:5.1f}%  "
                f"attempts {job.attempts}/{job.max_attempts}  {job.created_at:%Y-%m-%d %H:%M:%S}"
            )
        return 0
    if not args.id:
        raise SystemExit(f"nightcrew jobs {args.action} needs a job id")
    if args.action == "show":
        found = app.get_job(args.id)
        if found is None:
            print(f"no job {args.id}", file=sys.stderr)
            return 1
        _print_json(found.to_dict())
        return 0
    done = app.retry(args.id) if args.action == "retry" else app.cancel(args.id)
    if not done:
        print(
            f"job {args.id} cannot be {args.action}ed (unknown, or in the wrong state)",
            file=sys.stderr,
        )
        return 1
    print(f"{args.action}: {args.id}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    queues = [q for q in args.queues.split(",") if q] if args.queues else None
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_worker(app, queues=queues, concurrency=args.concurrency))
    return 0


async def run_worker(app: App, *, queues: list[str] | None, concurrency: int | None) -> None:
    """Run a worker until SIGTERM/SIGINT; a second signal skips the grace period."""
    worker = app.worker(queues=queues, concurrency=concurrency)
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if worker.stopping:
            worker.settings = worker.settings.model_copy(update={"shutdown_grace_seconds": 0})
            for running in list(worker.running.values()):
                running.task.cancel()
        worker.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    logging.getLogger("nightcrew").info(
        "worker %s serving queues %s", worker.id, ",".join(worker.queues)
    )
    try:
        await worker.run()
    finally:
        await app.aclose()


# ---- parser -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``nightcrew`` command."""
    parser = argparse.ArgumentParser(prog="nightcrew", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Any, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--app", help="package.module:app (optional for this command)")
        p.set_defaults(func=func)
        return p

    add("migrate", cmd_migrate, "apply pending schema migrations")
    add("db-url", cmd_db_url, "print the database URL in use (starts the embedded server)")
    p = add("db", cmd_db, "control the embedded PostgreSQL server")
    p.add_argument("action", choices=["start", "stop", "status"])
    p = add("enqueue", cmd_enqueue, "enqueue a job and print its id")
    p.add_argument("type")
    p.add_argument("payload", nargs="?", default="{}", help="JSON payload")
    p.add_argument("--priority", type=int)
    p.add_argument("--delay", type=float, help="seconds before the job may run")
    p.add_argument("--dedupe-key")
    p = add("jobs", cmd_jobs, "list, show, retry or cancel jobs")
    p.add_argument("action", choices=["list", "show", "retry", "cancel"])
    p.add_argument("id", nargs="?")
    p.add_argument("--status")
    p.add_argument("--type")
    p.add_argument("--limit", type=int, default=50)
    p = add("worker", cmd_worker, "run a worker")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--queues", help="comma-separated queues (default: all of the app's)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``nightcrew`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except NightcrewError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
