"""nightcrew.Stages: declared stage ranges, progress in proportion inside the current
stage, never backwards, the stage's name saved as the job's stage."""

from __future__ import annotations

from typing import Any

import pytest

from nightcrew import Stages
from nightcrew.stages import StageRange, plan_stages

PIPELINE = {
    "initializing": (0, 10),
    "discovering": (10, 30),
    "scoring": (30, 50),
    "enriching": (50, 90),
    "storing": (90, 100),
}


class Recorder:
    """A progress sink that keeps every save (what JobContext.save would write)."""

    def __init__(self) -> None:
        self.saves: list[dict[str, Any]] = []

    async def save(
        self,
        *,
        progress: float | None = None,
        stage: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        self.saves.append({"progress": progress, "stage": stage, "metrics": metrics})


def test_a_stage_range_moves_in_proportion_and_stays_inside() -> None:
    enriching = StageRange("enriching", 50, 90)
    assert enriching.at(0, 5) == 50
    assert enriching.at(3, 5) == pytest.approx(74)
    assert enriching.at(5, 5) == 90
    assert enriching.at(9, 5) == 90, "more than the total stays at the stage's end"
    assert enriching.at(-1, 5) == 50
    assert enriching.at(3, None) == 50, "an unknown total stays at the stage's start"
    assert enriching.at(3, 0) == 50


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({}, "at least one stage"),
        ({"a": (0, 120)}, "'a': range must satisfy"),
        ({"a": (30, 10)}, "'a': range must satisfy"),
        ({"a": (0, 50), "b": (40, 60)}, "'b' starts at 40"),
        ([("a", 0, 10), ("a", 10, 20)], "'a' declared twice"),
        ({"": (0, 10)}, "non-empty string"),
    ],
)
def test_bad_declarations_are_refused_naming_the_stage(ranges: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan_stages(ranges)


async def test_progress_rises_through_the_ranges_and_saves_the_stage_name() -> None:
    sink = Recorder()
    stages = Stages(sink, PIPELINE)
    await stages.enter("initializing")
    await stages.complete()
    await stages.enter("enriching", total=5)
    await stages.advance(3, metrics={"enriched": 3})
    await stages.advance(5)
    await stages.enter("storing")
    await stages.complete()
    assert [(s["stage"], s["progress"]) for s in sink.saves] == [
        ("initializing", 0), ("initializing", 10), ("enriching", 50),
        ("enriching", pytest.approx(74)), ("enriching", 90), ("storing", 90), ("storing", 100),
    ]  # fmt: skip
    assert sink.saves[3]["metrics"] == {"enriched": 3}


async def test_progress_never_goes_backwards() -> None:
    sink = Recorder()
    stages = Stages(sink, PIPELINE)
    await stages.enter("enriching", total=10)
    await stages.advance(8)
    await stages.advance(2)  # a smaller count (work redone) keeps the bar
    await stages.enter("scoring")  # an earlier stage re-entered keeps it too
    progress = [s["progress"] for s in sink.saves]
    assert progress == sorted(progress)
    assert progress[-1] == pytest.approx(82)
    assert sink.saves[-1]["stage"] == "scoring"


async def test_a_floor_from_an_earlier_attempt_holds_the_bar() -> None:
    sink = Recorder()
    stages = Stages(sink, PIPELINE, floor=66)
    assert await stages.enter("enriching", total=10, done=2) == 66
    assert await stages.advance(5) == 70


async def test_the_total_can_be_learnt_while_advancing() -> None:
    stages = Stages(Recorder(), PIPELINE)
    await stages.enter("discovering")
    assert stages.progress == 10
    assert await stages.advance(1, total=4) == 15


async def test_unknown_stage_and_advance_before_enter_are_errors() -> None:
    stages = Stages(Recorder(), PIPELINE)
    with pytest.raises(RuntimeError, match="enter a stage"):
        await stages.advance(1)
    with pytest.raises(ValueError, match="unknown stage 'nope'"):
        await stages.enter("nope")
