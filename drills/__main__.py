"""``python -m drills``: run every drill and print one table (drill, figure, target, held?).

Exit status 1 when a figure of correctness missed its target or a drill failed (a timing
ratio's miss is printed, not gating: see ``Figure.gates``); a drill that cannot run here
(not root, a package missing) prints one SKIPPED row with the reason instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from drills.report import Figure, exit_status, table, timing_misses

# Run in this order: each later drill assumes less of the machine than the one before.
DRILLS = ("pgbouncer", "partition", "failover", "soak")


def run_drill(name: str, overrides: list[str]) -> list[Figure]:
    """Run ``drills.<name>`` with its default flags (and ``overrides``); never raises."""
    module = importlib.import_module(f"drills.{name}")
    parser = argparse.ArgumentParser(prog=f"drills.{name}")
    module.add_arguments(parser)
    args, _unknown = parser.parse_known_args(overrides)
    began = time.monotonic()
    try:
        rows: list[Figure] = module.run(args)
    except Exception as exc:  # a broken drill is a row of the table, not the end of the run
        traceback.print_exc()
        rows = [Figure(name, "FAILED", f"{type(exc).__name__}: {exc}"[:160], "", False)]
    rows.append(Figure(name, "duration", f"{time.monotonic() - began:.0f} s"))
    return rows


def main() -> int:
    """Run the drills named by ``--only`` (default: all), print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(DRILLS)}")
    args, overrides = parser.parse_known_args()
    names = [n for n in (args.only or ",".join(DRILLS)).split(",") if n]
    unknown = sorted(set(names) - set(DRILLS))
    if unknown:
        parser.error(f"unknown drill(s): {', '.join(unknown)}")
    began = time.monotonic()
    rows = [row for name in names for row in run_drill(name, overrides)]
    rows.append(Figure("all", "duration", f"{time.monotonic() - began:.0f} s"))
    print(table(rows))
    for row in timing_misses(rows):
        print(f"timing figure missed (not gating): {row.drill}: {row.figure}: {row.value}")
    return exit_status(rows)


if __name__ == "__main__":
    sys.exit(main())
