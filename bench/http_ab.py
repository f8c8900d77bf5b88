"""HTTP enqueue, interleaved A/B: ``nightcrew serve`` variants under the same load generator.

    python bench/http_ab.py --variant before=../base/src --variant after= --rounds 3

Each ``--variant NAME=PYTHONPATH[=SERVE OPTIONS]`` serves ``bench/http_app.py`` with the
nightcrew found on that ``PYTHONPATH`` (empty: this tree) and the given ``nightcrew serve``
options (e.g. ``--workers 2``). In each round every variant takes the 50-client load of
``make bench`` (bench/suite.py: back to back, keep-alive, ``POST /api/jobs``), the order
rotating by round; then ``POST /bench/floor`` (a FastAPI route answering without the
database, for comparison) on the last variant's server;
with ``--concurrent``, then the library's 32-client concurrent enqueue of ``make bench``
(full size), which the HTTP figure's target is a ratio of. Prints one JSON line per run,
then the medians per variant.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from typing import Any

from nightcrew.keys import create_key
from suite import free_port, served_load, start_server
from throughput import FULL, Bench, bench_database


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--database-url", default=os.environ.get(
        "NIGHTCREW_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))  # fmt: skip
    ap.add_argument("--db-name", default="nightcrew_bench")
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--no-floor", action="store_true")
    ap.add_argument("--concurrent", action="store_true", help="the 32-client library figure too")
    args = ap.parse_args()
    variants = []
    for spec in args.variant:
        name, _, rest = spec.partition("=")
        path, _, options = rest.partition("=")
        variants.append((name, path, tuple(options.split())))
    bench = Bench(bench_database(args.database_url, args.db_name), FULL)
    _, key = create_key(bench.admin, "bench", actor="bench")
    runs: dict[str, list[dict[str, Any]]] = {}
    for rnd in range(args.rounds):
        order = variants[rnd % len(variants) :] + variants[: rnd % len(variants)]
        for index, (name, path, options) in enumerate(order):
            bench.reset()
            port = free_port()
            env = {"PYTHONPATH": os.path.abspath(path)} if path else {}
            server = start_server(bench.url, port, extra=options, env=env)
            try:
                rec = served_load(server.pid, port, key, args.clients, args.seconds)
                load = os.getloadavg()[0]
                runs.setdefault(name, []).append(rec)
                print(json.dumps({"variant": name, "round": rnd + 1, "load1": load, **rec}))
                if index == len(order) - 1 and not args.no_floor:
                    rec = served_load(server.pid, port, key, args.clients, args.seconds,
                                      "/bench/floor")  # fmt: skip
                    runs.setdefault("floor", []).append(rec)
                    print(json.dumps({"variant": "floor", "round": rnd + 1,
                                      "load1": os.getloadavg()[0], **rec}))  # fmt: skip
            finally:
                server.terminate()
                server.wait(15)
        if args.concurrent:
            bench.concurrent(rnd + 1, 32, 1)  # prints its own JSON line
            runs.setdefault("concurrent", []).append(bench.runs["concurrent"][-1])
    bench.reset()
    for name, recs in runs.items():
        keys = ("rate", "p50", "p99", "server_cpu_ms_per_job", "cpu_us_per_job")
        med = {k: round(statistics.median(r[k] for r in recs), 2)
               for k in keys if k in recs[0]}  # fmt: skip
        print(json.dumps({"median_of": len(recs), "variant": name, **med}))


if __name__ == "__main__":
    main()
