"""Schedule definitions and their fire times.

Cron expressions are parsed by croniter; this module only maps croniter's wall-clock
matches onto real instants in the schedule's time zone, so that daylight-saving changes
behave like classic cron:

* A schedule with a fixed hour fires once per matching day. A wall time skipped by a
  spring-forward change fires at the moment the clock jumps (02:30 on a 02:00→03:00 day
  fires at 03:00); a wall time that happens twice on a fall-back day fires on its first
  occurrence only.
* A schedule whose hour field is ``*`` follows the clock: it does not fire in the hour that
  does not exist, and fires in both copies of the hour that repeats.

Interval schedules (``every=``) ignore time zones: they fire at whole multiples of the
interval since the Unix epoch, so every process computes the same fire times.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterBadDateError, CroniterError
from pydantic import BaseModel

from nightcrew.errors import ConfigurationError

MissedPolicy = Literal["run_once", "skip"]
WHEN_CHOICES: tuple[str, ...] = ("tick", "quiet")
MISSED_POLICIES: tuple[str, ...] = ("run_once", "skip")
_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCAN_LIMIT = 200_000  # croniter steps per lookup; a full DST hour of a per-second cron is 3600


@dataclass(frozen=True)
class Schedule:
    """One schedule: when it fires and the job it enqueues.

    Exactly one of ``cron`` and ``every`` is set. ``payload_json`` is the payload as JSON;
    it is validated against the job type again each time the schedule fires.
    """

    name: str
    type: str
    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    payload_json: str = "{}"
    priority: int | None = None
    queue: str | None = None
    critical: bool = True
    missed: MissedPolicy = "run_once"
    defer_delay: timedelta = timedelta(hours=2)
    max_deferrals: int = 3
    quiet_backlog: int | None = None
    """Set for ``when="quiet"``: a tick waits until fewer jobs than this are runnable..."""
    run_by: timedelta | None = None
    """... but fires this long after the tick at the latest."""

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return ZoneInfo(self.timezone)

    @property
    def payload(self) -> Any:
        """The payload as a Python value."""
        return json.loads(self.payload_json)

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after`` (a UTC datetime)."""
        if after.tzinfo is None:
            raise ValueError("after must be timezone-aware")
        if self.every is not None:
            return _next_interval(self.every, after)
        assert self.cron is not None
        return _next_cron(self.cron, self.zone, after.astimezone(UTC))

    def definition(self) -> dict[str, Any]:
        """The fields stored in ``nightcrew.schedules`` (with a hash of them)."""
        values: dict[str, Any] = {
            "name": self.name, "type": self.type, "cron": self.cron,
            "every_seconds": self.every.total_seconds() if self.every else None,
            "timezone": self.timezone, "payload": self.payload_json,
            "priority": self.priority, "queue": self.queue, "critical": self.critical,
            "missed": self.missed, "defer_delay_seconds": self.defer_delay.total_seconds(),
            "max_deferrals": self.max_deferrals,
        }  # fmt: skip
        quiet = {
            "quiet_backlog": self.quiet_backlog,
            "run_by_seconds": self.run_by.total_seconds() if self.run_by else None,
        }
        # Hashed only when set, so schedules without them keep the hash they had.
        digest_of = {**values, **quiet} if self.quiet_backlog is not None else dict(values)
        values.update(quiet)  # fmt: skip
        digest = hashlib.sha256(json.dumps(digest_of, sort_keys=True).encode()).hexdigest()
        return {**values, "code_hash": digest[:32]}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Schedule:
        """Rebuild from a ``nightcrew.schedules`` row (as a dict)."""
        every = row["every_seconds"]
        run_by = row.get("run_by_seconds")
        return cls(
            name=row["name"], type=row["type"], cron=row["cron"],
            every=timedelta(seconds=every) if every is not None else None,
            timezone=row["timezone"], payload_json=json.dumps(row["payload"]),
            priority=row["priority"], queue=row["queue"], critical=row["critical"],
            missed=row["missed"], defer_delay=timedelta(seconds=row["defer_delay_seconds"]),
            max_deferrals=row["max_deferrals"], quiet_backlog=row.get("quiet_backlog"),
            run_by=timedelta(seconds=run_by) if run_by is not None else None,
        )  # fmt: skip


def make_schedule(
    type: str,
    *,
    name: str | None = None,
    cron: str | None = None,
    every: timedelta | float | None = None,
    timezone: str = "UTC",
    payload: Any = None,
    priority: int | None = None,
    queue: str | None = None,
    critical: bool = True,
    missed: str = "run_once",
    defer_delay: timedelta | float = timedelta(hours=2),
    max_deferrals: int = 3,
    when: str = "tick",
    quiet_backlog: int | None = None,
    run_by: timedelta | float | None = None,
) -> Schedule:
    """Build a :class:`Schedule` from user arguments; numbers of seconds are accepted for
    ``every``, ``defer_delay`` and ``run_by``. Raises :class:`ConfigurationError` naming the
    problem."""
    label = name or type
    quiet_backlog, run_by = _quiet_options(label, when, quiet_backlog, run_by)
    if isinstance(every, int | float) and not isinstance(every, bool):
        every = timedelta(seconds=every)
    if isinstance(defer_delay, int | float) and not isinstance(defer_delay, bool):
        defer_delay = timedelta(seconds=defer_delay)
    if isinstance(payload, BaseModel):
        payload_json = payload.model_dump_json()
    else:
        try:
            payload_json = json.dumps({} if payload is None else payload, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"schedule {label!r}: payload is not JSON-serialisable: {exc}"
            ) from None
    return Schedule(
        name=label, type=type, cron=cron, every=every, timezone=timezone,  # type: ignore[arg-type]
        payload_json=payload_json, priority=priority, queue=queue, critical=critical,
        missed=missed, defer_delay=defer_delay, max_deferrals=max_deferrals,  # type: ignore[arg-type]
        quiet_backlog=quiet_backlog, run_by=run_by,
    )  # fmt: skip


def _quiet_options(
    label: str, when: str, quiet_backlog: int | None, run_by: timedelta | float | None
) -> tuple[int | None, timedelta | None]:
    """``(quiet_backlog, run_by)`` of a ``when="quiet"`` schedule; ``(None, None)`` for a
    plain one, which may not set them."""
    if when not in WHEN_CHOICES:
        raise ConfigurationError(
            f"schedule {label!r}: when must be 'tick' or 'quiet', got {when!r}"
        )
    if when == "tick":
        if quiet_backlog is not None or run_by is not None:
            raise ConfigurationError(
                f"schedule {label!r}: quiet_backlog and run_by need when='quiet'"
            )
        return None, None
    if isinstance(run_by, int | float) and not isinstance(run_by, bool):
        run_by = timedelta(seconds=run_by)
    if quiet_backlog is None or run_by is None:
        raise ConfigurationError(
            f"schedule {label!r}: when='quiet' needs quiet_backlog= and run_by="
        )
    return quiet_backlog, run_by  # type: ignore[return-value]  # checked by _validate


def _validate(s: Schedule) -> None:
    def bad(problem: str) -> ConfigurationError:
        return ConfigurationError(f"schedule {s.name!r}: {problem}")

    if not isinstance(s.name, str) or not s.name:
        raise ConfigurationError(f"a schedule needs a non-empty name, got {s.name!r}")
    if not isinstance(s.type, str) or not s.type:
        raise bad(f"job type must be a non-empty string, got {s.type!r}")
    if (s.cron is None) == (s.every is None):
        raise bad("give exactly one of cron= and every=")
    if s.every is not None:
        if not isinstance(s.every, timedelta):
            raise bad(f"every must be a timedelta or seconds, got {s.every!r}")
        if s.every < timedelta(seconds=1):
            raise bad(f"every must be at least 1 second, got {s.every}")
    if s.cron is not None:
        check_cron(s.cron, s.name)
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise bad(
            f"unknown time zone {s.timezone!r} (use an IANA name like 'Europe/London')"
        ) from None
    if s.missed not in MISSED_POLICIES:
        raise bad(f"missed must be 'run_once' or 'skip', got {s.missed!r}")
    if not isinstance(s.critical, bool):
        raise bad(f"critical must be True or False, got {s.critical!r}")
    if not isinstance(s.defer_delay, timedelta) or s.defer_delay <= timedelta(0):
        raise bad(f"defer_delay must be a positive timedelta, got {s.defer_delay!r}")
    if not isinstance(s.max_deferrals, int) or isinstance(s.max_deferrals, bool):
        raise bad(f"max_deferrals must be an integer, got {s.max_deferrals!r}")
    if s.max_deferrals < 0:
        raise bad(f"max_deferrals must be >= 0, got {s.max_deferrals}")
    if s.priority is not None and (not isinstance(s.priority, int) or isinstance(s.priority, bool)):
        raise bad(f"priority must be an integer, got {s.priority!r}")
    if s.queue is not None and (not isinstance(s.queue, str) or not s.queue):
        raise bad(f"queue must be a non-empty string, got {s.queue!r}")
    if (s.quiet_backlog is None) != (s.run_by is None):
        raise bad("quiet_backlog and run_by go together (when='quiet')")
    if s.quiet_backlog is not None and (
        not isinstance(s.quiet_backlog, int) or isinstance(s.quiet_backlog, bool)
        or s.quiet_backlog < 1
    ):  # fmt: skip
        raise bad(f"quiet_backlog must be an integer >= 1, got {s.quiet_backlog!r}")
    if s.run_by is not None and (not isinstance(s.run_by, timedelta) or s.run_by <= timedelta(0)):
        raise bad(f"run_by must be a positive timedelta or seconds, got {s.run_by!r}")


def check_cron(expr: str, label: str = "") -> None:
    """Raise :class:`ConfigurationError` unless ``expr`` is a 5-field cron expression, a
    6-field one with a leading seconds field, or an alias like ``@daily``."""
    prefix = f"schedule {label!r}: " if label else ""
    if not isinstance(expr, str) or not expr.strip():
        raise ConfigurationError(f"{prefix}cron must be a non-empty string, got {expr!r}")
    fields = expr.split()
    if len(fields) == 1 and fields[0].lower() in _ALIASES:
        return
    if len(fields) not in (5, 6):
        raise ConfigurationError(
            f"{prefix}cron {expr!r} has {len(fields)} fields; expected 5 (minute hour day "
            "month weekday), 6 (seconds first) or an alias such as @daily"
        )
    try:
        parsed = croniter(expr, datetime(2000, 1, 1), second_at_beginning=True)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ConfigurationError(f"{prefix}invalid cron {expr!r}: {exc}") from None
    try:
        # A valid expression may still name no real date (e.g. 31 February).
        parsed.get_next(datetime)
    except CroniterBadDateError:
        raise ConfigurationError(
            f"{prefix}cron {expr!r} never fires: its day and month never meet"
        ) from None


# ---- fire times ------------------------------------------------------------------------------


def _next_interval(every: timedelta, after: datetime) -> datetime:
    step = every // timedelta(microseconds=1)
    since = (after - _EPOCH) // timedelta(microseconds=1)
    return _EPOCH + timedelta(microseconds=(since // step + 1) * step)


def _hour_is_wildcard(expr: str) -> bool:
    fields = expr.split()
    if len(fields) == 1:
        return fields[0].lower() == "@hourly"
    return fields[-4] == "*"


def _next_cron(expr: str, zone: ZoneInfo, after: datetime) -> datetime:
    follows_clock = _hour_is_wildcard(expr)
    local = after.astimezone(zone)
    wall = local.replace(tzinfo=None)
    # Inside the first pass of a repeated hour, earlier wall times will happen again
    # (second pass) after `after`: look back by the size of the repeat.
    margin = abs(local.replace(fold=1).utcoffset() - local.replace(fold=0).utcoffset())  # type: ignore[operator]
    it = croniter(expr, wall - margin, second_at_beginning=True)
    best: datetime | None = None
    best_wall: datetime | None = None
    for _ in range(_SCAN_LIMIT):
        candidate: datetime = it.get_next(datetime)
        if best is not None and best_wall is not None and candidate > best_wall + margin:
            return best
        for instant in _instants(candidate, zone, follows_clock):
            if instant > after and (best is None or instant < best):
                best, best_wall = instant, candidate
    if best is not None:
        return best
    raise ConfigurationError(f"cron {expr!r} has no fire time after {after.isoformat()}")


def _instants(wall: datetime, zone: ZoneInfo, follows_clock: bool) -> list[datetime]:
    """The real instants at which the local wall time ``wall`` happens (0, 1 or 2)."""
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    if first == second:
        return [first]
    if first.astimezone(zone).replace(tzinfo=None) != wall:  # skipped by a spring-forward
        if follows_clock:
            return []
        return [_transition(zone, min(first, second), max(first, second))]
    return [first, second] if follows_clock else [first]


def _transition(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The instant in (lo, hi] at which the zone's UTC offset changes (whole seconds)."""
    before = lo.astimezone(zone).utcoffset()
    low, high = 0, math.ceil((hi - lo).total_seconds())
    while low + 1 < high:
        mid = (low + high) // 2
        if (lo + timedelta(seconds=mid)).astimezone(zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return lo + timedelta(seconds=high)
