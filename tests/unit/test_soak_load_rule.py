"""The soak drill's load rule (drills/soak.py): a pickup p99 miss is excused only when other
processes raised the machine's load between the first and the last minute, by half *and*
by at least one runnable task; otherwise the target is judged. No database is needed."""

from __future__ import annotations

import math

import pytest

from drills.soak import load_rose, minute_load, p99_figure


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (0.0, 0.5),  # the clean-clone CI run of 2026-12-02: idle, the drill's own noise
        (0.0, 0.99),
        (0.4, 1.2),  # tripled, but less than one more task
        (2.0, 2.9),  # less than half
        (3.0, 3.0),
        (5.0, 2.0),  # fell
    ],
)
def test_small_or_relative_only_rises_do_not_excuse(first: float, last: float) -> None:
    assert not load_rose(first, last)


@pytest.mark.parametrize(("first", "last"), [(0.0, 1.0), (0.5, 1.5), (2.0, 3.0), (8.3, 13.8)])
def test_rises_by_half_and_one_task_excuse(first: float, last: float) -> None:
    assert load_rose(first, last)


def test_a_miss_on_an_idle_machine_is_judged() -> None:
    figure = p99_figure(11, 85, 0.0, 0.5)
    assert figure.held is False
    assert "not judged" not in figure.value


def test_a_miss_as_neighbours_join_is_shown_not_judged() -> None:
    figure = p99_figure(102, 253, 8.3, 13.8)
    assert figure.held is None
    assert "not judged" in figure.value


def test_within_the_target_holds_whatever_the_load() -> None:
    assert p99_figure(100, 150, 0.0, 9.0).held is True
    assert p99_figure(10, 50, 0.0, 0.0).held is True  # under the 50 ms floor


def test_minute_load_recovers_a_steady_load() -> None:
    # A load average that sat at 2.0 and stays there: 2 runnable tasks during the minute.
    assert minute_load(2.0, 2.0) == pytest.approx(2.0)
    # From idle to a steady 3 tasks: the average reaches 3 (1 - 1/e) after a minute.
    assert minute_load(0.0, 3 * (1 - 1 / math.e)) == pytest.approx(3.0)
