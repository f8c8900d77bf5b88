"""Which drill figures fail `make drills` (and so CI): correctness gates, timing is reported."""

from __future__ import annotations

from drills.report import Figure, exit_status, timing_misses
from drills.soak import p99_figure


def test_a_missed_correctness_figure_fails_the_run() -> None:
    rows = [
        Figure("failover", "acknowledged enqueues lost", "1", "0", False),
        Figure("soak", "duration", "606 s"),
    ]
    assert exit_status(rows) == 1


def test_a_missed_timing_ratio_is_reported_but_does_not_fail_the_run() -> None:
    miss = p99_figure(11.0, 85.0, 0.0, 0.5)  # the idle-machine miss of 2026-12-02
    assert miss.held is False and miss.gates is False
    rows = [miss, Figure("failover", "acknowledged enqueues lost", "0", "0", True)]
    assert exit_status(rows) == 0
    assert timing_misses(rows) == [miss]


def test_a_failed_drill_fails_the_run() -> None:
    assert exit_status([Figure("soak", "FAILED", "RuntimeError: boom", "", False)]) == 1
