"""Time remaining: the estimate and its wording, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from nightcrew.http.dashboard.views import progress_label
from nightcrew.progress import estimate_eta, remaining_text, row_eta

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def test_the_rate_since_the_first_progress_save_wins() -> None:
    # Resumed from a checkpoint at 40 % (first save 30 s ago), now 50 %: 10 % per 30 s.
    eta = estimate_eta(progress=50, now=NOW, started_at=ago(35), base_progress=40,
                       base_at=ago(30), typical_seconds=5)  # fmt: skip
    assert eta == pytest.approx(150.0)


def test_the_rate_since_started_at_until_progress_moves_past_the_first_save() -> None:
    eta = estimate_eta(progress=25, now=NOW, started_at=ago(10), base_progress=25,
                       base_at=ago(2))  # fmt: skip
    assert eta == pytest.approx(30.0)


def test_without_progress_the_median_of_the_type_less_the_time_spent() -> None:
    assert estimate_eta(progress=0, now=NOW, started_at=ago(20), typical_seconds=120) == 100
    # Running longer than usual: no honest estimate.
    assert estimate_eta(progress=0, now=NOW, started_at=ago(200), typical_seconds=120) is None


def test_unknown_without_progress_and_without_history() -> None:
    assert estimate_eta(progress=0, now=NOW, started_at=ago(20)) is None
    assert estimate_eta(progress=0, now=NOW, started_at=None) is None


def test_row_eta_only_for_running_jobs_and_asks_the_median_only_when_needed() -> None:
    asked: list[str] = []

    def median(job_type: str) -> float | None:
        asked.append(job_type)
        return 60.0

    running = {"status": "processing", "type": "t", "progress": 50.0, "started_at": ago(10),
               "progress_base": 10.0, "progress_base_at": ago(8)}  # fmt: skip
    assert row_eta(running, NOW, median) == pytest.approx(10.0) and asked == []
    fresh = {**running, "progress": 0.0, "progress_base": None, "progress_base_at": None}
    assert row_eta(fresh, NOW, median) == pytest.approx(50.0) and asked == ["t"]
    assert row_eta({**running, "status": "completed"}, NOW, median) is None
    assert row_eta({**running, "status": "pending"}, NOW, median) is None


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (12.4, "12 s"), (59.4, "59 s"), (59.6, "1 min"), (90, "2 min"),
     (125, "2 min"), (3569, "59 min"), (3600, "1 h"), (3900, "1 h 5 min"),
     (7 * 3600 + 59 * 60, "7 h 59 min"), (None, None)],
)  # fmt: skip
def test_remaining_text(seconds: float | None, text: str | None) -> None:
    assert remaining_text(seconds) == text


def test_the_dashboard_label_reads_like_seed_000() -> None:
    job = {"stage": "Update Prices", "progress": 45.2, "metrics": {}, "eta_seconds": 118.0}
    assert progress_label(job) == "Update Prices (45% - 2 min remaining)"
    with_metrics = {**job, "metrics": {"done": 9, "total": 20}}
    assert progress_label(with_metrics) == "Update Prices (45% - 2 min remaining, 9/20)"
    assert progress_label({**job, "stage": None}) == "45% - 2 min remaining"
    # Without an estimate the label is as before.
    unknown = {**with_metrics, "eta_seconds": None}
    assert progress_label(unknown) == "Update Prices... 45% (9/20)"
