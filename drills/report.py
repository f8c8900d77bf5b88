"""The drills' one output: rows of (drill, figure, value, target, held?)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure of a drill and whether it met its target.

    ``held`` is None for a figure with no target (reported for comparison only), and for
    a drill that was skipped (then ``value`` says why). ``gates`` is False for a timing
    ratio (a p99 or a throughput ratio): a miss is printed as NO but does not fail the run,
    since performance is judged by benchmarks on a quiet machine, not by CI; every figure of
    correctness (a lost job, an effect twice, a late write accepted, a lease kept) gates.
    """

    drill: str
    figure: str
    value: str
    target: str = ""
    held: bool | None = None
    gates: bool = True


def exit_status(rows: Sequence[Figure]) -> int:
    """1 when a gating figure missed its target (or a drill failed), else 0."""
    return 1 if any(row.held is False and row.gates for row in rows) else 0


def timing_misses(rows: Sequence[Figure]) -> list[Figure]:
    """The non-gating figures that missed their targets (printed under the table)."""
    return [row for row in rows if row.held is False and not row.gates]


def skipped(drill: str, reason: str) -> Figure:
    """The row of a drill that could not run here, with its one-line reason."""
    return Figure(drill, "SKIPPED", reason)


def table(rows: Sequence[Figure]) -> str:
    """A plain-text table of ``rows`` (what ``make drills`` prints)."""
    head = ("drill", "figure", "value", "target", "held?")
    cells = [head] + [
        (r.drill, r.figure, r.value, r.target,
         "-" if r.held is None else ("yes" if r.held else "NO"))
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def say(drill: str, message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"{time.strftime('%H:%M:%S')} [{drill}] {message}", file=sys.stderr, flush=True)
