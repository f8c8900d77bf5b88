"""CPU of ``POST /api/jobs`` in the web process without sockets: the ASGI app of
``bench/http_app.py`` called directly (bare ASGI messages, no HTTP client, no uvicorn),
``--clients`` concurrent callers back to back on uvloop, the real database behind.

    python bench/http_enqueue_cpu.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Prints one JSON object: the process's CPU per request (the callers' share is a few
microseconds) and the wall time per request. What it leaves out (uvicorn's parsing and
writing) is the same for any change of nightcrew's code, and CPU in one process barely
depends on how busy the machine is: the figure to compare server code by on a shared
machine. Interleave runs of two trees with ``PYTHONPATH`` (``--ab`` does it: ``--ab
before=/path/to/src --ab after=`` runs each ``--rounds`` times, alternating). ``--profile
FILE`` writes cProfile stats of the measured requests.

On a machine too busy for CPU times to compare, count instructions instead: a child run
(``--key`` of an existing key in a database this script set up) under ``valgrind
--tool=callgrind --instr-atstart=no`` with ``HTTP_CPU_CALLGRIND=1`` instruments only the
measured requests; callgrind's "Collected" divided by ``--requests`` repeats within 0.3 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

DATABASE = "nightcrew_http_cpu"
BODY = b'{"type": "bench.noop", "payload": {"n": 1}}'
PATH = os.environ.get("HTTP_CPU_PATH", "/api/jobs")  # /bench/floor: the stack without the database


async def measure(
    api: Any, key: str, clients: int, requests: int, profile: str | None
) -> dict[str, float]:
    headers = [(b"host", b"x"), (b"authorization", f"Bearer {key}".encode()),
               (b"content-type", b"application/json"),
               (b"content-length", str(len(BODY)).encode())]  # fmt: skip

    async def post() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                 "method": "POST", "scheme": "http", "path": PATH, "raw_path": PATH.encode(),
                 "root_path": "", "query_string": b"", "headers": headers,
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}  # fmt: skip
        sent = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": BODY, "more_body": False}
            await asyncio.Event().wait()  # never: a disconnect would come here
            raise AssertionError

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await api(scope, receive, send)
        assert status == 202, status

    async def caller(n: int) -> None:
        for _ in range(n):
            await post()

    await asyncio.gather(*(caller(5) for _ in range(clients)))  # warm up: pool, key, caches
    per = requests // clients
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    callgrind = os.environ.get("HTTP_CPU_CALLGRIND")  # valgrind --instr-atstart=no: count these
    if callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
    wall, cpu, times = time.perf_counter(), time.process_time(), os.times()
    await asyncio.gather(*(caller(per) for _ in range(clients)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    sys_cpu = os.times().system - times.system
    if callgrind:
        subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)
    if prof is not None:
        prof.disable()
        prof.dump_stats(profile)
    done = per * clients
    return {
        "cpu_ms_per_request": 1000 * cpu / done,
        "sys_ms_per_request": 1000 * sys_cpu / done,
        "wall_ms_per_request": 1000 * wall / done,
    }


def run_one(url: str, key: str, clients: int, requests: int, profile: str | None) -> None:
    import uvloop

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    os.environ["NIGHTCREW_DATABASE_URL"] = url
    from http_app import app
    from nightcrew.http import create_app

    api = create_app(app)

    async def main() -> dict[str, float]:
        try:
            return await measure(api, key, clients, requests, profile)
        finally:
            await app.aclose()

    figures = uvloop.run(main())
    print(json.dumps({"load1": os.getloadavg()[0], **figures}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("NIGHTCREW_DATABASE_URL"))
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--profile")
    parser.add_argument("--ab", action="append", help="NAME=PYTHONPATH (empty: this tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key", help=argparse.SUPPRESS)  # set by --ab for its children
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url (or NIGHTCREW_DATABASE_URL)")
    if args.key:  # a child of --ab: the database is ready
        run_one(args.database_url, args.key, args.clients, args.requests, args.profile)
        return
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    url = make_conninfo(args.database_url, dbname=DATABASE)
    from nightcrew import App, create_api_key

    setup = App(url)
    setup.migrate()
    with setup.pool().connection() as conn:
        _, key = create_api_key(conn, "bench", admin=True)
    setup.close()
    variants = [spec.partition("=")[::2] for spec in (args.ab or ["this="])]
    cpu: dict[str, list[float]] = {}
    for rnd in range(args.rounds if args.ab else 1):
        order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
        for name, path in order:
            env = dict(os.environ)
            if path:
                env["PYTHONPATH"] = os.path.abspath(path)
            cmd = [sys.executable, __file__, "--database-url", url, "--key", key,
                   "--clients", str(args.clients), "--requests", str(args.requests)]  # fmt: skip
            if args.profile:
                cmd += ["--profile", f"{args.profile}.{name}"]
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            rec = json.loads(out.strip().splitlines()[-1])
            cpu.setdefault(name, []).append(rec["cpu_ms_per_request"])
            print(json.dumps({"variant": name, "round": rnd + 1, **rec}), flush=True)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("TRUNCATE nightcrew.jobs")
    for name, values in cpu.items():
        print(json.dumps({"variant": name, "runs": len(values),
                          "median_cpu_ms_per_request": round(statistics.median(values), 3),
                          "min": round(min(values), 3), "max": round(max(values), 3)}))  # fmt: skip


if __name__ == "__main__":
    main()
