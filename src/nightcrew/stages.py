"""Staged progress: a handler declares its stages, each owning a range of the progress bar,
and reports the work done inside the current stage; :class:`Stages` turns that into the
job's ``progress`` (moving inside the stage's range in proportion, never backwards) and
``stage`` (the stage's name).

    stages = ctx.stages({"downloading": (0, 40), "parsing": (40, 90), "storing": (90, 100)})
    await stages.enter("downloading", total=len(urls))
    for i, url in enumerate(urls, 1):
        ...
        await stages.advance(i, metrics={"downloaded": i})
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol


class ProgressSink(Protocol):
    """Where progress goes: :class:`nightcrew.JobContext` (its ``save``)."""

    async def save(
        self,
        *,
        progress: float | None = None,
        stage: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        """Record progress, stage and metrics."""


@dataclass(frozen=True)
class StageRange:
    """One declared stage: its name and the part of the 0-100 bar it owns."""

    name: str
    start: float
    end: float

    def at(self, done: float, total: float | None) -> float:
        """The progress after ``done`` of ``total`` units of this stage's work (the
        stage's start when the total is unknown or zero, its end once done >= total)."""
        if not total or total <= 0:
            return self.start
        share = min(max(done / total, 0.0), 1.0)
        return self.start + (self.end - self.start) * share


def plan_stages(
    ranges: Mapping[str, tuple[float, float]] | Iterable[tuple[str, float, float]],
) -> dict[str, StageRange]:
    """Check and index declared stages: each range inside 0-100 with start <= end, in
    order, none overlapping the one before. Raises ``ValueError`` naming the bad stage."""
    items = (
        [(name, lo, hi) for name, (lo, hi) in ranges.items()]
        if isinstance(ranges, Mapping)
        else list(ranges)
    )
    if not items:
        raise ValueError("declare at least one stage")
    planned: dict[str, StageRange] = {}
    previous_end = 0.0
    for name, start, end in items:
        if not isinstance(name, str) or not name:
            raise ValueError(f"stage name must be a non-empty string, got {name!r}")
        if name in planned:
            raise ValueError(f"stage {name!r} declared twice")
        if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end <= 100):
            raise ValueError(f"stage {name!r}: range must satisfy 0 <= start <= end <= 100")
        if start < previous_end:
            raise ValueError(f"stage {name!r} starts at {start}, before the previous end")
        planned[name] = StageRange(name, float(start), float(end))
        previous_end = end
    return planned


class Stages:
    """A job's declared stages and where it is in them (see the module docstring).

    ``floor`` is progress already reached (by an earlier attempt, say): nothing reported
    here moves the bar below it. Every report is saved through ``sink.save`` at once.
    """

    def __init__(
        self,
        sink: ProgressSink,
        ranges: Mapping[str, tuple[float, float]] | Iterable[tuple[str, float, float]],
        *,
        floor: float = 0.0,
    ) -> None:
        self._sink = sink
        self.ranges = plan_stages(ranges)
        """The declared stages by name, in order."""
        self.progress = min(max(float(floor), 0.0), 100.0)
        """The highest progress reported so far (what the job's bar shows)."""
        self.current: StageRange | None = None
        """The stage entered last, ``None`` before the first."""
        self.total: float | None = None
        """The current stage's amount of work, if known."""

    def _move_to(self, value: float) -> float:
        # Never backwards: a stage re-entered on resume, or a smaller done, keeps the bar.
        self.progress = max(self.progress, min(value, 100.0))
        return self.progress

    def _stage(self, name: str) -> StageRange:
        try:
            return self.ranges[name]
        except KeyError:
            raise ValueError(
                f"unknown stage {name!r}; declared: {', '.join(self.ranges)}"
            ) from None

    async def enter(
        self,
        name: str,
        *,
        total: float | None = None,
        done: float = 0,
        metrics: dict[str, Any] | None = None,
    ) -> float:
        """Start stage ``name`` (``total`` units of work, ``done`` of them already) and
        save it as the job's stage; returns the progress saved."""
        self.current = self._stage(name)
        self.total = total
        progress = self._move_to(self.current.at(done, total))
        await self._sink.save(progress=progress, stage=name, metrics=metrics)
        return progress

    async def advance(
        self,
        done: float,
        *,
        total: float | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> float:
        """Report ``done`` units of the current stage's work (``total`` updates its
        amount); the bar moves in proportion inside the stage's range. Returns the
        progress saved."""
        if self.current is None:
            raise RuntimeError("enter a stage before advancing")
        if total is not None:
            self.total = total
        progress = self._move_to(self.current.at(done, self.total))
        await self._sink.save(progress=progress, stage=self.current.name, metrics=metrics)
        return progress

    async def complete(self, *, metrics: dict[str, Any] | None = None) -> float:
        """The current stage is done: move the bar to its end."""
        if self.current is None:
            raise RuntimeError("enter a stage before completing it")
        progress = self._move_to(self.current.end)
        await self._sink.save(progress=progress, stage=self.current.name, metrics=metrics)
        return progress
