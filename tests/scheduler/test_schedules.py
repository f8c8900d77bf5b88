"""Fire-time computation: cron with seconds and aliases, intervals, time zones and DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from nightcrew import App, ConfigurationError
from nightcrew.scheduler.schedules import make_schedule


def fires_on(cron: str, tz: str, day: tuple[int, int, int]) -> list[str]:
    """Local fire times (HH:MM+offset) of ``cron`` during one local calendar day."""
    schedule = make_schedule("t", cron=cron, timezone=tz)
    zone = ZoneInfo(tz)
    start = datetime(*day, tzinfo=zone)
    end = (start + timedelta(days=1)).replace(tzinfo=zone)  # wall-clock midnight
    moment, out = start.astimezone(UTC) - timedelta(microseconds=1), []
    while (moment := schedule.next_after(moment)) < end:
        out.append(moment.astimezone(zone).strftime("%H:%M%z"))
    return out


@pytest.mark.parametrize(
    ("tz", "cron", "day", "expected"),
    [
        # spring forward 02:00 -> 03:00: a 02:30 job fires once, when the clock jumps
        ("America/New_York", "30 2 * * *", (2024, 3, 10), ["03:00-0400"]),
        ("America/New_York", "30 2 * * *", (2024, 3, 9), ["02:30-0500"]),
        # fall back 02:00 -> 01:00: a 01:30 job fires once, on the first 01:30
        ("America/New_York", "30 1 * * *", (2024, 11, 3), ["01:30-0400"]),
        ("Europe/London", "30 1 * * *", (2024, 3, 31), ["02:00+0100"]),
        ("Europe/London", "30 1 * * *", (2024, 10, 27), ["01:30+0100"]),
        ("Europe/London", "0 2 * * *", (2024, 10, 27), ["02:00+0000"]),
        # southern hemisphere: Sydney springs forward in October
        ("Australia/Sydney", "15 2 * * *", (2024, 10, 6), ["03:00+1100"]),
        ("Australia/Sydney", "15 2 * * *", (2024, 4, 7), ["02:15+1100"]),
        # Lord Howe shifts by 30 minutes: 02:00 -> 02:30 and 02:00 -> 01:30
        ("Australia/Lord_Howe", "10 2 * * *", (2024, 10, 6), ["02:30+1100"]),
        ("Australia/Lord_Howe", "45 1 * * *", (2024, 4, 7), ["01:45+1100"]),
    ],
)
def test_fixed_time_fires_exactly_once_on_dst_days(
    tz: str, cron: str, day: tuple[int, int, int], expected: list[str]
) -> None:
    assert fires_on(cron, tz, day) == expected


def test_hourly_follows_the_clock_across_dst() -> None:
    spring = fires_on("0 * * * *", "America/New_York", (2024, 3, 10))
    assert len(spring) == 23 and "02:00-0500" not in spring and spring[2] == "03:00-0400"
    autumn = fires_on("0 * * * *", "America/New_York", (2024, 11, 3))
    assert len(autumn) == 25 and autumn[1:3] == ["01:00-0400", "01:00-0500"]
    # every 20 minutes in fixed hours 1-3: the skipped hour's ticks collapse into one
    assert fires_on("*/20 1-3 * * *", "America/New_York", (2024, 3, 10)) == [
        "01:00-0500", "01:20-0500", "01:40-0500", "03:00-0400", "03:20-0400", "03:40-0400",
    ]  # fmt: skip


def test_next_after_is_strictly_after_and_monotonic_through_a_repeated_hour() -> None:
    schedule = make_schedule("t", cron="*/15 * * * *", timezone="America/New_York")
    moment = datetime(2024, 11, 3, 4, 50, tzinfo=UTC)  # 00:50 EDT
    seen = []
    for _ in range(12):
        moment = schedule.next_after(moment)
        seen.append(moment)
    assert seen == sorted(set(seen))
    assert [m - seen[0] for m in seen[:10]] == [timedelta(minutes=15 * i) for i in range(10)]


def test_seconds_field_aliases_and_intervals() -> None:
    at = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert make_schedule("t", cron="*/10 * * * * *").next_after(at) == at + timedelta(seconds=10)
    assert make_schedule("t", cron="@hourly").next_after(at) == at + timedelta(hours=1)
    assert make_schedule("t", cron="@daily").next_after(at) == datetime(2024, 5, 2, tzinfo=UTC)
    weekly = make_schedule("t", cron="@weekly").next_after(at)
    assert weekly == datetime(2024, 5, 5, tzinfo=UTC)  # Sunday midnight
    monthly = make_schedule("t", cron="@monthly", timezone="Europe/London").next_after(at)
    assert monthly == datetime(2024, 5, 31, 23, tzinfo=UTC)  # 1 June 00:00 BST
    every = make_schedule("t", every=timedelta(minutes=7))
    first = every.next_after(at)
    assert first > at and (first - datetime(1970, 1, 1, tzinfo=UTC)) % timedelta(minutes=7) == (
        timedelta(0)
    )
    assert every.next_after(first) == first + timedelta(minutes=7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "0 2 * *"}, "has 4 fields"),
        ({"cron": "61 2 * * *"}, "invalid cron '61 2 \\* \\* \\*'"),
        ({"cron": "0 2 * * * * *"}, "has 7 fields"),
        ({"cron": "0 0 31 2 *"}, "cron '0 0 31 2 \\*' never fires"),
        ({"cron": "0 0 0 30 2 *"}, "never fires"),
        ({}, "exactly one of cron= and every="),
        ({"cron": "@daily", "every": 60}, "exactly one of cron= and every="),
        ({"every": 0.5}, "at least 1 second"),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ({"cron": "@daily", "missed": "burst"}, "missed must be 'run_once' or 'skip'"),
        ({"cron": "@daily", "max_deferrals": -1}, "max_deferrals must be >= 0"),
        ({"cron": "@daily", "defer_delay": 0}, "defer_delay must be a positive"),
        ({"cron": "@daily", "payload": {1, 2}}, "not JSON-serialisable"),
    ],
)
def test_bad_definitions_are_refused_with_a_clear_error(
    kwargs: dict[str, object], message: str
) -> None:
    app = App("postgresql://unused", migrate_on_start=False)
    with pytest.raises(ConfigurationError, match=message):
        app.schedule("t", **kwargs)  # type: ignore[arg-type]


def test_names_are_unique_but_types_may_repeat() -> None:
    app = App("postgresql://unused", migrate_on_start=False)
    app.schedule("report", cron="0 2 * * *")
    app.schedule("report", name="report-weekly", cron="0 3 * * 0")
    with pytest.raises(ConfigurationError, match="'report' is already declared"):
        app.schedule("report", every=60)
    assert {"report", "report-weekly"} <= set(app.schedules.definitions)
