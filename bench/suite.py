"""``make bench``: every figure of issue 21 in one run, beside PgQueuer and the floors.

    python bench/suite.py --database-url postgresql://postgres@127.0.0.1:5432/postgres

Runs ``--rounds`` rounds (default 3). In each: every figure of ``bench/throughput.py`` that
has a target, nightcrew and PgQueuer back to back (who goes first alternates by round),
each followed by its floors of ``bench/floors.py`` (the client floors, the COPY ceiling,
pgbench inserts with 1 and 32 clients, two commits at 50 Hz, the drain's fetch + finish from
2 pgbench connections); HTTP enqueue through one ``nightcrew serve`` process with 50
concurrent clients. Then one table of medians: figure, nightcrew, PgQueuer, floor, ratio
(the median of the rounds' own ratios), each round's ratio, target, met?. PgQueuer runs in its own
venv (``--pgqueuer-python``); when that venv is missing its columns are empty and the run
says how to build it. Every run is also one JSON line on stdout; ``--json FILE`` writes the
table's rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

import floors
from nightcrew.keys import create_key
from throughput import (
    FULL,
    HERE,
    PEERS,
    PGQ_DEFAULT_PYTHON,
    QUICK,
    Bench,
    DrainConfig,
    _pct,
    bench_database,
    pgqueuer_or_none,
    run_pgqueuer,
)

DRAIN = DrainConfig(2, 500, 500, 1000, 10.0)  # the fastest setup of throughput.py's sweep
HTTP_CLIENTS = 50
CLIENT_FLOOR_JOBS = 3_000
CONCURRENT_FLOOR_JOBS = 10_000  # as the concurrent figure
FIGURES = ("async_single", "concurrent", "async_bulk", "drain", "latency")


# ---- HTTP through `nightcrew serve` ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    url: str, port: int, *, extra: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``nightcrew serve --app http_app:app`` in ``bench/``, with the database of ``url``;
    ``extra`` serve options, ``env`` more environment (e.g. ``PYTHONPATH`` of another tree)."""
    cli = os.path.join(os.path.dirname(sys.executable), "nightcrew")
    environ = dict(os.environ, NIGHTCREW_DATABASE_URL=url, **(env or {}))
    return subprocess.Popen([cli, "serve", "--app", "http_app:app", "--port", str(port), *extra],
                            cwd=HERE, env=environ)  # fmt: skip


async def wait_until_serving(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nightcrew serve did not listen on {port}") from None
            await asyncio.sleep(0.05)


def post_request(port: int, key: str, path: str = "/api/jobs") -> bytes:
    body = b'{"type": "bench.noop", "payload": {"n": 1}}'
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")  # fmt: skip
    return head.encode() + body


async def http_client(
    port: int, request: bytes, until: float, latencies: list[float], statuses: Counter[str]
) -> None:
    """One keep-alive connection posting back to back until ``until`` (perf_counter).

    A bare HTTP/1.1 client on asyncio streams: an HTTP library would spend more CPU than the
    server on this 2-core machine and measure itself."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12].decode()
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))  # fmt: skip
            await reader.readexactly(length)
            statuses[status] += 1
            if status == "202":
                latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def warm_up(port: int, key: str, path: str = "/api/jobs") -> dict[str, int]:
    """Wait for the server to listen, then post from one client for half a second."""
    await wait_until_serving(port, 30)
    warm: Counter[str] = Counter()
    await http_client(port, post_request(port, key, path), time.perf_counter() + 0.5, [], warm)
    return dict(warm)


async def http_load(
    port: int, key: str, clients: int, seconds: float, path: str = "/api/jobs", warm: bool = True
) -> dict[str, Any]:
    warmed = await warm_up(port, key, path) if warm else None
    request = post_request(port, key, path)
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(http_client(port, request, until, latencies, statuses)
                           for _ in range(clients)))  # fmt: skip
    elapsed = time.perf_counter() - started
    ms = sorted(x * 1000 for x in latencies)
    return {"clients": clients, "rate": len(ms) / elapsed, "p50": _pct(ms, 50),
            "p99": _pct(ms, 99), "errors": sum(n for s, n in statuses.items() if s != "202"),
            "served": len(ms), "warm_up": warmed}  # fmt: skip


def http_figure(bench: Bench, rep: int, clients: int, seconds: float) -> None:
    """HTTP enqueue through one ``nightcrew serve`` process; throughput and p99. Then, from
    the same process and load generator, ``POST /bench/floor`` (http_app.py): a FastAPI
    route answering without the database, for comparison (the enqueue skips FastAPI's
    routing: nightcrew.http.enqueue_direct)."""
    _, key = create_key(bench.admin, "bench", actor="bench")
    bench.reset()
    port = free_port()
    server = start_server(bench.url, port)
    try:
        bench.emit("http", rep=rep, **served_load(server.pid, port, key, clients, seconds))
        floor = served_load(server.pid, port, key, clients, seconds, "/bench/floor")
        bench.emit("http_floor", rep=rep, **floor)
    finally:
        server.terminate()
        server.wait(15)


def served_load(
    pid: int, port: int, key: str, clients: int, seconds: float, path: str = "/api/jobs"
) -> dict[str, Any]:
    """``http_load`` against the server process ``pid``, with its CPU per request: one
    process's own ceiling is 1 / that, on a core of its own. The CPU is read after the
    warm-up: a server just started would otherwise charge its start-up (imports, the
    pool's first connections: ~0.7-1 s of CPU here) to the jobs."""
    warmed = asyncio.run(warm_up(port, key, path))
    cpu_before = process_cpu_seconds(pid)
    rec = asyncio.run(http_load(port, key, clients, seconds, path, warm=False))
    cpu = process_cpu_seconds(pid) - cpu_before
    rec["warm_up"] = warmed
    # Per answer: the 202s, plus any error answers (errors are work too).
    served = rec["served"] + rec["errors"]
    rec["server_cpu_ms_per_job"] = 1000 * cpu / served if served else None
    return rec


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- floors ------------------------------------------------------------------------------------


def floors_beside(bench: Bench, figure: str, rep: int, args: argparse.Namespace) -> None:
    """The floors of ``figure``, measured right after its nightcrew and PgQueuer runs: the
    machine's speed drifts within a run (its COPY ceiling moved 127k -> 73k rows/s within
    one), so a round's ratio to its floor pairs runs a minute apart, not ten."""
    conn, seconds = bench.admin, args.floor_seconds
    pgbench = shutil.which("pgbench") is not None
    if not pgbench and figure in ("concurrent", "drain", "latency"):
        print(f"pgbench not on PATH: the pgbench floors of {figure} are skipped", file=sys.stderr)

    def keep(rec: dict[str, Any]) -> None:
        bench.runs.setdefault(rec["figure"], []).append(rec)

    conn.execute("TRUNCATE nightcrew.jobs")
    if figure == "async_bulk":
        keep(floors.copy_ceiling(conn, "nightcrew.jobs", 1))
        keep(floors.python_copy_floor(bench.url, bench.uvloop))
        keep(floors.python_copy_floor(bench.url, bench.uvloop, encode=True))
    elif figure in ("async_single", "concurrent"):  # asyncpg first in even rounds, as PgQueuer
        clients, jobs = (
            (1, CLIENT_FLOOR_JOBS) if figure == "async_single" else (32, CONCURRENT_FLOOR_JOBS)
        )
        for rec in floors.client_floors(
            bench.url, args.pgqueuer_python, jobs, rep % 2 == 0, clients=clients
        ):
            keep(rec)
        if figure == "concurrent" and pgbench:
            for clients in (1, 32):
                conn.execute("TRUNCATE nightcrew.jobs")
                keep(floors.insert_floor(bench.url, "nightcrew.jobs", floors.INSERT_JOB, seconds,
                                         clients))  # fmt: skip
            conn.execute("TRUNCATE nightcrew.jobs")
            keep(floors.insert_notify_floor(bench.url, seconds, 32))
    elif figure == "drain":
        if pgbench:
            keep(floors.drain_floor(bench.url, conn))
        keep(floors.python_drain_floor(bench.url, conn))
        keep(floors.python_drain_floor(bench.url, conn, tasks=True))
    elif figure == "latency":
        if pgbench:
            keep(floors.two_commits(bench.url, seconds))
        keep(floors.python_pickup_floor(bench.url))
    conn.execute("TRUNCATE nightcrew.jobs")


# ---- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One target: which medians it compares and how."""

    title: str
    ours: str  # figure:key
    peer: str | None
    floor: str | None
    ratio_of: str  # "peer" or "floor": what the ratio divides by
    target: str
    met: Callable[[float], bool] | None  # None: an explanatory row without a target


ROWS = (
    Row("single enqueue, 1 client, async (jobs/s)", "async_single:rate",
        "pgqueuer.async_single:rate", "insert_floor:rate", "peer", "≥ 1.2× PgQueuer",
        lambda r: r >= 1.2),
    Row("  client CPU per job (µs)", "async_single:cpu_us_per_job", None,
        "psycopg_async_floor:cpu_us_per_job", "floor", "(what it costs)", None),
    Row("  psycopg async floor: job row + NOTIFY, 1 prepared statement, 1 client (jobs/s)",
        "psycopg_async_floor:rate", "pgqueuer.async_single:rate", "insert_floor:rate", "peer",
        "≥ 1.2 leaves room for the target", None),
    Row("  the same statement with asyncpg, PgQueuer's driver (jobs/s)", "asyncpg_floor:rate",
        "pgqueuer.async_single:rate", "psycopg_async_floor:rate", "peer", "(the peer's floor)",
        None),
    Row("  client CPU per job: psycopg floor / asyncpg floor (µs)",
        "psycopg_async_floor:cpu_us_per_job", None, "asyncpg_floor:cpu_us_per_job", "floor",
        "(what stops it)", None),
    Row("concurrent enqueue, 32 clients, 1 job/call (jobs/s)", "concurrent:rate",
        "pgqueuer.concurrent:rate", "insert_floor_32:rate", "peer", "≥ 1.5× PgQueuer",
        lambda r: r >= 1.5),
    Row("  the same against pgbench, 32 clients", "concurrent:rate", None,
        "insert_floor_32:rate", "floor", "≥ 70 % of the floor", lambda r: r >= 0.7),
    Row("  the same against pgbench insert + NOTIFY, 32 clients", "concurrent:rate", None,
        "insert_notify_floor_32:rate", "floor", "(the wake-up's cost, unshared)", None),
    Row("  psycopg floor: the job row alone, 32 tasks of one process, against pgbench",
        "psycopg_async_floor_32:rate", None, "insert_floor_32:rate", "floor",
        "(what stops it: any Python client of psycopg)", None),
    Row("  the same with asyncpg, PgQueuer's driver, against pgbench",
        "asyncpg_floor_32:rate", None, "insert_floor_32:rate", "floor",
        "(what stops it: any Python client of asyncpg)", None),
    Row("  concurrent enqueue against the psycopg 32-task floor", "concurrent:rate", None,
        "psycopg_async_floor_32:rate", "floor", "(what the library costs)", None),
    Row("bulk enqueue, async, calls of 1,000 (jobs/s)", "async_bulk:rate",
        "pgqueuer.async_bulk:rate", "copy_ceiling:rate", "peer", "≥ 3× PgQueuer",
        lambda r: r >= 3.0),
    Row("  the same against the COPY ceiling", "async_bulk:rate", None, "copy_ceiling:rate",
        "floor", "≥ 80 % of the floor", lambda r: r >= 0.8),
    Row("  Python COPY floor: the caller's items, then pre-encoded rows, against that ceiling",
        "python_copy_floor:rate", None, "copy_ceiling:rate", "floor",
        "(< 0.80: what stops it, any Python library handed these items)", None),
    Row("  bulk enqueue against that Python floor", "async_bulk:rate", None,
        "python_copy_floor:rate", "floor", "(what the library costs)", None),
    Row("  that Python COPY floor against PgQueuer", "python_copy_floor:rate",
        "pgqueuer.async_bulk:rate", None, "peer",
        "(< 3: the target is beyond any Python library handed these items)", None),
    Row("  the same floor with the payloads JSON-encoded (one stdlib call per 1,000), against "
        "PgQueuer", "python_copy_floor_encoded:rate", "pgqueuer.async_bulk:rate", None, "peer",
        "(< 3: beyond any Python library that must encode them)", None),
    Row("  that encoding floor against the COPY ceiling", "python_copy_floor_encoded:rate", None,
        "copy_ceiling:rate", "floor", "(< 0.80: what stops it, any library that must encode "
        "them)", None),
    Row("  bulk enqueue against that encoding floor", "async_bulk:rate", None,
        "python_copy_floor_encoded:rate", "floor", "(what the library costs beyond it)", None),
    Row("drain, 20,000 no-op jobs, kept (jobs/s)", "drain:rate", "pgqueuer.drain:rate",
        "drain_floor:rate", "peer", "≥ 3× PgQueuer", lambda r: r >= 3.0),
    Row("  the same against fetch + finish in the database alone (pgbench, 2 connections)",
        "drain:rate", None, "drain_floor:rate", "floor", "(what stops it)", None),
    Row("  that floor against PgQueuer", "drain_floor:rate", "pgqueuer.drain:rate", None,
        "peer", "(< 3: the target is beyond the database itself)", None),
    Row("  the same statements from 2 Python processes (psycopg), no nightcrew (jobs/s)",
        "drain:rate", None, "python_drain_floor:rate", "floor", "(what the library costs)",
        None),
    Row("  that Python floor against PgQueuer", "python_drain_floor:rate",
        "pgqueuer.drain:rate", None, "peer",
        "(< 3: the target is beyond any Python worker of psycopg)", None),
    Row("  the same with each job a no-op asyncio task, against PgQueuer",
        "python_drain_floor_tasks:rate", "pgqueuer.drain:rate", None, "peer",
        "(< 3: beyond any Python worker that runs jobs side by side)", None),
    Row("  drain against that task floor", "drain:rate", None, "python_drain_floor_tasks:rate",
        "floor", "(what the library costs beyond it)", None),
    Row("idle pickup p99 (ms)", "latency:p99", "pgqueuer.latency:p99", "two_commits:p99",
        "peer", "≤ 0.6× PgQueuer", lambda r: r <= 0.6),
    Row("  two durable commits alone (pgbench at 50 Hz, no NOTIFY, no Python) against PgQueuer",
        "two_commits:p99", "pgqueuer.latency:p99", None, "peer",
        "(> 0.6: the target is beyond the database and its disk)", None),
    Row("  Python floor: insert + NOTIFY, a listening psycopg process leases it by id (p99 ms)",
        "python_pickup_floor:p99", "pgqueuer.latency:p99", None, "peer",
        "(> 0.6: the target is beyond any Python queue of psycopg)", None),
    Row("  idle pickup p99 against that Python floor", "latency:p99", None,
        "python_pickup_floor:p99", "floor", "(what the library costs)", None),
    Row("HTTP enqueue, 50 clients, 1 serve process (jobs/s)", "http:rate", None,
        "concurrent:rate", "floor", "≥ 60 % of concurrent", lambda r: r >= 0.6),
    Row("HTTP enqueue p99 (ms)", "http:p99", None, None, "none", "< 50 ms",
        lambda v: v < 50),
    Row("  HTTP server CPU per job (ms)", "http:server_cpu_ms_per_job", None, None, "none",
        "(what stops it)", None),
    Row("  a FastAPI route, same process, no database (requests/s)", "http:rate", None,
        "http_floor:rate", "floor", "(FastAPI's routing, which the enqueue skips)", None),
    Row("  that route's p99 (ms)", "http_floor:p99", None, None, "none", "(for comparison)",
        None),
    Row("  that route's server CPU per request (ms)", "http_floor:server_cpu_ms_per_job", None,
        None, "none", "(for comparison)", None),
)  # fmt: skip


def values_of(bench: Bench, ref: str | None) -> list[float | None]:
    """The figure's value in each round, in round order (None for a run that failed)."""
    if ref is None:
        return []
    figure, _, key = ref.partition(":")
    return [r.get(key) if r.get("status", "ok") == "ok" else None
            for r in bench.runs.get(figure, [])]  # fmt: skip


def median_of(bench: Bench, ref: str | None) -> float | None:
    values = [v for v in values_of(bench, ref) if v is not None]
    return statistics.median(values) if values else None


def round_ratios(bench: Bench, ours: str, base: str | None) -> list[float]:
    """Each round's own ratio, ours / base, where both ran in that round. The rounds are
    interleaved, so this pairs figures measured minutes apart: on a machine whose speed
    drifts (this one's COPY ceiling moved 127k -> 73k within one run) the median of these
    is steadier than the ratio of two medians. Empty when the rounds do not pair up."""
    mine, theirs = values_of(bench, ours), values_of(bench, base)
    if not mine or len(mine) != len(theirs):
        return []
    return [m / t for m, t in zip(mine, theirs, strict=True) if m is not None and t]


def table(bench: Bench) -> list[dict[str, Any]]:
    """The rows of the final table: medians, the median of the rounds' ratios, verdicts."""
    rows = []
    for row in ROWS:
        ours, peer, floor = (median_of(bench, ref) for ref in (row.ours, row.peer, row.floor))
        base_ref = {"peer": row.peer, "floor": row.floor, "none": None}[row.ratio_of]
        per_round = round_ratios(bench, row.ours, base_ref) if base_ref else []
        base = {"peer": peer, "floor": floor, "none": 1.0}[row.ratio_of]
        ratio = ours / base if ours is not None and base else None
        if per_round:
            ratio = statistics.median(per_round)
        value = ours if row.ratio_of == "none" else ratio
        met = None if value is None or row.met is None else row.met(value)
        rows.append({"figure": row.title, "nightcrew": ours, "pgqueuer": peer, "floor": floor,
                     "ratio": None if row.ratio_of == "none" else ratio,
                     "rounds": per_round, "target": row.target, "met": met})  # fmt: skip
    return rows


def fmt(value: float | None, ratio: bool = False) -> str:
    if value is None:
        return "—"
    if ratio:
        return f"{value:.2f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def print_table(rows: list[dict[str, Any]], rounds: int) -> None:
    print(f"\nmake bench — medians of {rounds} interleaved rounds (ratio: the median of the "
          f"rounds' own ratios); load1 now {os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| figure | nightcrew | PgQueuer | floor | ratio | each round | target | met? |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        met = {True: "**met**", False: "not met", None: "—"}[r["met"]]
        each = " / ".join(f"{v:.2f}" for v in r["rounds"]) or "—"
        print(f"| {r['figure']} | {fmt(r['nightcrew'])} | {fmt(r['pgqueuer'])} | "
              f"{fmt(r['floor'])} | {fmt(r['ratio'], True)} | {each} | {r['target']} | "
              f"{met} |")  # fmt: skip


# ---- main --------------------------------------------------------------------------------------


def run_round(bench: Bench, peer: Any, rep: int, args: argparse.Namespace) -> None:
    figures: dict[str, Callable[[], object]] = {
        "async_single": lambda: bench.async_single(rep),
        "concurrent": lambda: bench.concurrent(rep, args.clients, args.client_procs),
        "async_bulk": lambda: bench.async_bulk(rep),
        "drain": lambda: bench.drain(rep, DRAIN, 240.0),
        "latency": lambda: bench.latency(rep, 10),
    }
    for figure in FIGURES:
        pair = [lambda f=figure: figures[f](), lambda f=figure: run_pgqueuer(bench, peer, f, rep)]
        if rep % 2 == 0:  # PgQueuer first in even rounds: neither always runs on a warmer box
            pair.reverse()
        for run in pair:
            survive(bench, figure, rep, run)
        survive(bench, f"floors of {figure}", rep,
                lambda f=figure: floors_beside(bench, f, rep, args))  # fmt: skip
    survive(bench, "http", rep, lambda: http_figure(bench, rep, HTTP_CLIENTS, args.http_seconds))


def survive(bench: Bench, figure: str, rep: int, run: Callable[[], object]) -> None:
    """Run one measurement; a failure (say, the server out of connections) is recorded and
    reported instead of losing the whole run."""
    try:
        run()
    except Exception as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        bench.emit(f"{figure}.failed", rep=rep, status="error", error=str(detail)[-500:])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get(
        "NIGHTCREW_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--uvloop", action="store_true", help="async client figures on uvloop")
    ap.add_argument("--http-seconds", type=float, default=10.0)
    ap.add_argument("--floor-seconds", type=int, default=10)
    ap.add_argument("--pgqueuer-python", default=PGQ_DEFAULT_PYTHON)
    ap.add_argument("--peers", default=PEERS, help="the shared harness (../shared/bench-peers)")
    ap.add_argument("--json", help="write the table's rows to this file")
    ap.add_argument("--quick", action="store_true", help="smaller runs, 1 round (a smoke test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.http_seconds, args.floor_seconds = 1, 3.0, 3
    try:
        url = bench_database(args.database_url, args.db_name)
    except psycopg.Error as exc:
        sys.exit(f"cannot prepare the benchmark database: {exc}")
    peer = pgqueuer_or_none(args.pgqueuer_python, args.peers, args.database_url, args.clients)
    bench = Bench(url, QUICK if args.quick else FULL)
    bench.uvloop = args.uvloop
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    try:
        for rep in range(1, args.rounds + 1):
            run_round(bench, peer, rep, args)
    finally:
        bench.reset()
        bench.app.close()
    rows = table(bench)
    print_table(rows, args.rounds)
    print(f"started {started}, ended {time.strftime('%H:%M:%S UTC', time.gmtime())}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"started": started, "rows": rows, "runs": bench.runs}, f, indent=1)


if __name__ == "__main__":
    main()
