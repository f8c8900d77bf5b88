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
from nightcrew.jobs import JobStatus
from nightcrew.lifecycle import control


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


CLI_ENQUEUE_OPTIONS: dict[str, tuple[type, str]] = {
    "queue": (str, "queue (default: the type's)"),
    "priority": (int, "higher runs first"),
    "delay": (float, "seconds before the job may run"),
    "dedupe_key": (str, "while a job with this key is live, return its id"),
    "dedupe_scope": (str, "active (default) or queued"),
    "user_id": (str, "the job's owner"),
    "max_attempts": (int, "attempts before the dead letter"),
    "timeout": (float, "seconds an attempt may run"),
}
"""The enqueue options (``EnqueueOptions``) the command line offers, with their types."""


def cmd_enqueue(args: argparse.Namespace) -> int:
    try:
        payload = json.loads(args.payload) if args.payload else {}
    except json.JSONDecodeError as exc:
        raise SystemExit(f"payload is not valid JSON: {exc}") from None
    app = load_app(args.app)
    options: Any = {name: getattr(args, name) for name in CLI_ENQUEUE_OPTIONS}
    job_id = app.enqueue(args.type, payload, **{k: v for k, v in options.items() if v is not None})
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
    act = control.retry if args.action == "retry" else control.cancel
    with app.pool().connection() as conn:
        result = act(conn, args.id)
    if not result.done:
        done = "retried" if args.action == "retry" else "cancelled"
        print(f"job {args.id} cannot be {done}: {_why(result, args.action)}", file=sys.stderr)
        return 1
    print(f"{args.action}: {args.id}")
    return 0


def _why(result: control.ControlResult, action: str) -> str:
    """Why a control action left the job alone, in words."""
    if result.outcome is control.Outcome.NOT_FOUND:
        return "no such job"
    if result.outcome is control.Outcome.DEDUPE_HELD:
        return "a live job holds its dedupe key (retrying would duplicate it)"
    status = result.status.value if result.status else "in another state"
    if action == "cancel" and result.status is JobStatus.PROCESSING:
        return "its cancel was already requested"
    return f"it is {status}"


def cmd_serve(args: argparse.Namespace) -> int:
    from nightcrew.http import serve

    serve(
        load_app(args.app),
        host=args.host,
        port=args.port,
        access_log=args.access_log,
        loop=args.loop,
        http=args.http,
    )
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from nightcrew import keys

    app = load_app(args.app)
    with app.pool().connection() as conn:
        if args.action == "create":
            if not args.user:
                raise SystemExit("nightcrew keys create needs --user NAME")
            record, secret = keys.create_key(conn, args.user, admin=args.admin)
            role = "admin" if record.is_admin else "user"
            print(f"created {role} key {record.id} (prefix {record.prefix}) for {record.user_id}")
            print("store it now: it is shown only once")
            print(secret)
        elif args.action == "list":
            for key in keys.list_keys(conn):
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "live"
                kind = "admin" if key.is_admin else "user"
                print(f"{key.id}  {key.prefix}  {key.user_id:<20} {kind:<5}  {state}")
        else:
            if not args.key:
                raise SystemExit("nightcrew keys revoke needs a key id or prefix")
            record = keys.revoke_key(conn, args.key)
            print(f"revoked key {record.id} ({record.prefix}) of {record.user_id}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    queues = [q for q in args.queues.split(",") if q] if args.queues else None
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.autoscale is not None:
        return run_autoscaled(app, args, queues)
    asyncio.run(
        run_worker(
            app, queues=queues, concurrency=args.concurrency, scheduler=not args.no_scheduler
        )
    )
    return 0


def worker_command(args: argparse.Namespace) -> list[str]:
    """The ``nightcrew worker`` command line of one autoscaled child (no --autoscale)."""
    command = [sys.executable, "-m", "nightcrew", "worker"]
    for flag, value in (("--app", args.app), ("--concurrency", args.concurrency),
                        ("--queues", args.queues)):  # fmt: skip
        if value:
            command += [flag, str(value)]
    return [*command, "--no-scheduler"] if args.no_scheduler else command


def run_autoscaled(app: App, args: argparse.Namespace, queues: list[str] | None) -> int:
    """Supervise between MIN and MAX worker processes until SIGTERM/SIGINT."""
    from nightcrew.autoscale import Supervisor, install_signal_handlers, policy_from

    # Built-in job types (maintenance's queue too) are registered by every App().
    served = sorted(set(queues) if queues else {t.queue for t in app.registry.values()})
    slots = args.concurrency or app.settings.concurrency
    policy = policy_from(app, args.autoscale, slots)
    supervisor = Supervisor(app, worker_command(args), policy, served)
    install_signal_handlers(supervisor)
    logging.getLogger("nightcrew").info(
        "autoscaling %d-%d workers on queues %s", *args.autoscale, ",".join(served)
    )
    supervisor.run()
    return 0


def _autoscale_bounds(text: str) -> tuple[int, int]:
    from nightcrew.autoscale import parse_bounds

    try:
        return parse_bounds(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def run_worker(
    app: App, *, queues: list[str] | None, concurrency: int | None, scheduler: bool = True
) -> None:
    """Run a worker until SIGTERM/SIGINT; a second signal skips the grace period.

    With ``scheduler`` the process also runs the scheduler loop: every process stands by,
    one leader fires the schedules."""
    worker = app.worker(queues=queues, concurrency=concurrency)
    sched = app.scheduler() if scheduler else None
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if worker.stopping:
            worker.settings = worker.settings.model_copy(update={"shutdown_grace_seconds": 0})
            for running in list(worker.running.values()):
                running.task.cancel()
        worker.stop()
        if sched is not None:
            sched.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    logging.getLogger("nightcrew").info(
        "worker %s serving queues %s", worker.id, ",".join(worker.queues)
    )
    sched_task = None
    if sched is not None:
        sched_task = asyncio.create_task(sched.run(), name="nightcrew-scheduler")
        sched_task.add_done_callback(_report_crash)
    try:
        await worker.run()
    finally:
        if sched is not None and sched_task is not None:
            sched.stop()
            await asyncio.gather(sched_task, return_exceptions=True)
        await app.aclose()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logging.getLogger("nightcrew").error(
            "the scheduler loop stopped", exc_info=task.exception()
        )


def cmd_schedules(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.action == "list":
        infos = app.schedules_list()
        if args.json:
            _print_json([info.to_dict() for info in infos])
        elif not infos:
            print("no schedules stored yet (a starting worker stores its app's schedules)")
        for info in [] if args.json else infos:
            state = "enabled" if info.enabled else "disabled"
            state = state if info.in_code else "not in code"
            last = f"{info.last_run_at:%Y-%m-%d %H:%M:%S}" if info.last_run_at else "never"
            week = info.stats_7d
            runs = f"  7d {week.succeeded} ok {week.failed} failed" if week else ""
            print(f"{info.name:<28} {state:<12} {info.when:<30} "
                  f"next {info.next_run_at:%Y-%m-%d %H:%M:%S%z}  last {last} "
                  f"({info.last_job_status or '-'}) {info.last_outcome or ''}{runs}")  # fmt: skip
        return 0
    if not args.name:
        raise SystemExit(f"nightcrew schedules {args.action} needs a schedule name")
    if args.action == "run":
        print(app.run_schedule_now(args.name))
        return 0
    if args.action == "set":
        if args.cron is None and args.every is None and args.timezone is None:
            raise SystemExit("nightcrew schedules set needs --cron, --every or --timezone")
        info = app.update_schedule(
            args.name, cron=args.cron, every=args.every, timezone=args.timezone
        )
    else:
        info = app.set_schedule_enabled(args.name, args.action == "enable")
    print(f"{info.name}: {'enabled' if info.enabled else 'disabled'}, {info.when}, "
          f"next run {info.next_run_at.isoformat()}")  # fmt: skip
    return 0


def cmd_queues(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.action == "list":
        queues = app.queues()
        if args.json:
            _print_json([q.as_dict() for q in queues])
            return 0
        if not queues:
            print("no queues yet")
        for q in queues:
            state = "PAUSED" if q.paused else "running"
            print(f"{q.name:<24} {state:<8} depth {q.depth:<8} running {q.running:<6} "
                  f"{q.jobs_per_minute:.1f}/min")  # fmt: skip
        return 0
    if not args.name:
        raise SystemExit(f"nightcrew queues {args.action} needs a queue name")
    by = "cli"
    if args.action == "pause":
        changed = app.pause_queue(args.name, by=by)
        print(f"{args.name}: paused" if changed else f"{args.name}: was paused already")
    else:
        changed = app.resume_queue(args.name)
        print(f"{args.name}: resumed" if changed else f"{args.name}: was not paused")
    return 0


def cmd_limits(args: argparse.Namespace) -> int:
    app = load_app(args.app)
    if args.action == "list":
        infos = app.limits()
        if args.json:
            _print_json([info.as_dict() for info in infos])
            return 0
        if not infos:
            print("no limit keys yet (a key appears when a job or ctx.limit first uses it)")
        for info in infos:
            source = "override" if info.overridden else "code"
            print(f"{info.key:<32} rate {info.rate or '-':<8} concurrency "
                  f"{info.concurrency or '-':<5} ({source})  running {info.running}  "
                  f"slots taken {info.backlog_seconds:.1f}s ahead")  # fmt: skip
        return 0
    if not args.key:
        raise SystemExit(f"nightcrew limits {args.action} needs a limit key")
    if args.action == "clear":
        changed = app.clear_limit(args.key)
        print(f"{args.key}: override cleared" if changed else f"{args.key}: had no override")
        return 0
    info = app.set_limit(args.key, rate=args.rate, concurrency=args.concurrency, by="cli")
    print(f"{info.key}: rate {info.rate or '-'}, concurrency {info.concurrency or '-'} "
          f"(override)")  # fmt: skip
    return 0


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
    for name, (kind, text) in CLI_ENQUEUE_OPTIONS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, help=text)
    p = add("jobs", cmd_jobs, "list, show, retry or cancel jobs")
    p.add_argument("action", choices=["list", "show", "retry", "cancel"])
    p.add_argument("id", nargs="?")
    p.add_argument("--status")
    p.add_argument("--type")
    p.add_argument("--limit", type=int, default=50)
    p = add("worker", cmd_worker, "run a worker")
    p.add_argument("--concurrency", type=int)
    p.add_argument("--queues", help="comma-separated queues (default: all of the app's)")
    p.add_argument(
        "--no-scheduler", action="store_true", help="do not run the scheduler in this process"
    )
    p.add_argument(
        "--autoscale",
        type=_autoscale_bounds,
        metavar="MIN:MAX",
        help="run MIN to MAX worker processes, started and stopped by the backlog",
    )
    p = add("schedules", cmd_schedules, "list, enable, disable, change or run schedules")
    p.add_argument("action", choices=["list", "enable", "disable", "run", "set"])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.add_argument("--cron", help="set: new cron expression")
    p.add_argument("--every", type=float, help="set: new interval in seconds")
    p.add_argument("--timezone", help="set: new IANA time zone")
    p = add("queues", cmd_queues, "list, pause or resume queues (cluster-wide)")
    p.add_argument("action", choices=["list", "pause", "resume"])
    p.add_argument("name", nargs="?")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p = add("limits", cmd_limits, "list, override or clear keyed rate/concurrency limits")
    p.add_argument("action", choices=["list", "set", "clear"])
    p.add_argument("key", nargs="?")
    p.add_argument("--rate", help="set: N/s, N/m or N/h")
    p.add_argument("--concurrency", type=int, help="set: at most N at once")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p = add("serve", cmd_serve, "serve the HTTP API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="log one line per request (off by default: it costs CPU on every request)",
    )
    p.add_argument(
        "--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
        help="event loop (auto: uvloop)",
    )  # fmt: skip
    p.add_argument(
        "--http", choices=["auto", "httptools", "h11"], default="auto",
        help="HTTP/1.1 parser (auto: httptools)",
    )  # fmt: skip
    p = add("keys", cmd_keys, "create, list or revoke HTTP API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("key", nargs="?", help="revoke: the key's id or prefix")
    p.add_argument("--user", help="create: the user the key acts for")
    p.add_argument("--admin", action="store_true", help="create: an admin key (sees all jobs)")
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
