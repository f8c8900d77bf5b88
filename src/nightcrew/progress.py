"""Time remaining of a running job: its own progress rate once it has one, else the typical
(median) duration of its type from the stats rollup; and how the dashboard words it.

The rate is measured from the attempt's first progress save (``progress_base`` and
``progress_base_at``, set by ``ctx.save``), so neither the time before the handler first
reported progress nor the progress an attempt resumed with from a checkpoint skews it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

# Upper bounds (seconds) of the rollup's duration buckets h0..h20; h21 is unbounded.
BUCKET_BOUNDS = [0.005 * 2.0**i for i in range(21)]


def quantile(buckets: Sequence[int], q: float) -> float | None:
    """Estimate the ``q`` quantile of a log-scale histogram, interpolating in the bucket."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            low = BUCKET_BOUNDS[index - 1] if index > 0 else 0.0
            high = BUCKET_BOUNDS[index] if index < len(BUCKET_BOUNDS) else low * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return BUCKET_BOUNDS[-1] * 2


def estimate_eta(
    *,
    progress: float,
    now: datetime,
    started_at: datetime | None,
    base_progress: float | None = None,
    base_at: datetime | None = None,
    typical_seconds: float | None = None,
) -> float | None:
    """Seconds until a running job reaches 100 %, or ``None`` when nothing tells.

    In order: the rate since the attempt's first progress save (``base_progress`` at
    ``base_at``) once progress moved on from it; else the rate since ``started_at`` once
    there is any progress; else ``typical_seconds`` (the type's median duration) minus the
    time already spent, ``None`` once the job has run longer than that.
    """
    remaining = max(0.0, 100.0 - progress)
    if base_at is not None and base_progress is not None and progress > base_progress:
        spent = (now - base_at).total_seconds()
        if spent > 0:
            return remaining * spent / (progress - base_progress)
    if started_at is not None and progress > 0:
        spent = (now - started_at).total_seconds()
        if spent > 0:
            return remaining * spent / progress
    if typical_seconds is not None:
        spent = (now - started_at).total_seconds() if started_at is not None else 0.0
        left = typical_seconds - max(0.0, spent)
        return left if left > 0 else None
    return None


def remaining_text(seconds: float | None) -> str | None:
    """``12 s``, ``2 min``, ``1 h 5 min`` (``None`` stays ``None``)."""
    if seconds is None:
        return None
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def row_eta(
    row: Mapping[str, Any], now: datetime, typical: Callable[[str], float | None]
) -> float | None:
    """:func:`estimate_eta` of a job row (a ``nightcrew.jobs`` row as a dict); ``typical``
    gives a type's median duration and is only asked when the job has no rate of its own."""
    if row.get("status") != "processing":
        return None
    progress, started_at = float(row.get("progress") or 0.0), row.get("started_at")
    base_progress, base_at = row.get("progress_base"), row.get("progress_base_at")
    own = estimate_eta(progress=progress, now=now, started_at=started_at,
                       base_progress=base_progress, base_at=base_at)  # fmt: skip
    if own is not None:
        return own
    return estimate_eta(progress=progress, now=now, started_at=started_at,
                        typical_seconds=typical(row["type"]))  # fmt: skip


def median_by_type(rows: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """The median duration per type from ``eta_type_buckets`` rows."""
    return {row["type"]: quantile(row["buckets"], 0.5) for row in rows}
