"""Keyed rate and concurrency limits, enforced by Postgres across every worker and host.

A :class:`Limit` names a key (a template such as ``"tenant:{user_id}"``) and a rate
(``"10/s"``, ``"100/m"``, ``"1000/h"``) and/or a concurrency (running jobs or
``ctx.limit`` blocks at once). Job types declare them (``@app.job(..., limits=[...])``);
handlers take one for a single call (``async with ctx.limit("hunter", rate="5/s")``).
The state lives in ``nightcrew.limits`` (see migration 0015 and docs/flow-control.md).
"""

from __future__ import annotations

import json
import re
import string
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row

from nightcrew.errors import ConfigurationError
from nightcrew.queries import query

_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smh])\s*$")
_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_KEY_FIELDS = ("user_id", "queue", "type")
_PAYLOAD_PREFIX = "payload."
MAX_KEY_LENGTH = 200

HOLD_SECONDS = 0.2
"""A fetched job whose rate slot comes within this many seconds keeps its lease and starts
at the slot; a later one is given back (run_at = its slot) so it keeps no worker slot."""

RECHECK_SECONDS = 0.25
"""A job held back by a full concurrency limit is fetched again this much later; a
``ctx.limit`` block waiting for a concurrency slot asks again as often."""

LATE_ENTRY_FRACTION = 0.025
"""A call (a ``ctx.limit`` block's entry, a rate-limited job's start) later for its rate
slot than this share of the rate's period (``"10/s"``: 25 ms; ``"/m"``: 1.5 s; ``"/h"``:
90 s) is not made: the slot passes unused and the call takes a new one.

Slots are spaced 5 % wider than the rate, so N + 1 slots span at least 1.05 periods: calls
entering within 2.5 % of a period of their slots keep N in any window of a period, and
leave the other 2.5 % to the way from the block to the provider (docs/flow-control.md).
"""


def parse_rate(rate: str) -> tuple[int, float]:
    """``"N/s"``, ``"N/m"`` or ``"N/h"`` as (count, period in seconds).

    Raises :class:`ConfigurationError` naming the bad value.
    """
    match = _RATE.match(rate) if isinstance(rate, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"rate must look like '10/s', '100/m' or '1000/h' (a count >= 1 per second, "
            f"minute or hour), got {rate!r}"
        )
    return int(match.group(1)), _PERIODS[match.group(2)]


def format_rate(count: int | None, seconds: float | None) -> str | None:
    """(count, period) back as ``"N/s"`` (or ``/m``, ``/h``); ``None`` without a rate."""
    if count is None or seconds is None:
        return None
    unit = {1.0: "s", 60.0: "m", 3600.0: "h"}.get(float(seconds))
    return f"{count}/{unit}" if unit else f"{count}/{seconds:g}s"


def _check_concurrency(concurrency: int | None) -> None:
    if concurrency is None:
        return
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an integer >= 1, got {concurrency!r}")


def _template_fields(key: str) -> list[str]:
    """The ``{field}`` names of a key template; refuses the ones a job cannot fill."""
    try:
        parsed = list(string.Formatter().parse(key))
    except ValueError as exc:
        raise ConfigurationError(f"limit key {key!r}: {exc}") from None
    fields = []
    for _text, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion:
            raise ConfigurationError(f"limit key {key!r}: no format spec or conversion allowed")
        payload_field = name.removeprefix(_PAYLOAD_PREFIX)
        if name not in _KEY_FIELDS and not (
            name.startswith(_PAYLOAD_PREFIX) and payload_field.isidentifier()
        ):
            raise ConfigurationError(
                f"limit key {key!r}: {{{name}}} is not one of {{user_id}}, {{queue}}, "
                f"{{type}} or {{payload.FIELD}} (a top-level payload field)"
            )
        fields.append(name)
    return fields


def check_key(key: str) -> None:
    """Refuse an empty, over-long or badly formed concrete limit key."""
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError("a limit key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ConfigurationError(f"a limit key may have at most {MAX_KEY_LENGTH} characters")
    if any(ord(c) < 32 for c in key):
        raise ConfigurationError("a limit key may not contain control characters")


@dataclass(frozen=True)
class Limit:
    """A keyed limit: at most ``rate`` calls (``"N/s"``, ``"N/m"``, ``"N/h"``) and/or at
    most ``concurrency`` at once, across every worker sharing the database.

    ``key`` may name the job's ``{user_id}``, ``{queue}``, ``{type}`` or a top-level payload
    field ``{payload.FIELD}``; a missing value leaves that part empty.
    """

    key: str
    _: KW_ONLY
    rate: str | None = None
    concurrency: int | None = None

    def __post_init__(self) -> None:
        check_key(self.key)
        _template_fields(self.key)
        if self.rate is None and self.concurrency is None:
            raise ConfigurationError(f"limit {self.key!r} needs a rate, a concurrency or both")
        if self.rate is not None:
            parse_rate(self.rate)
        _check_concurrency(self.concurrency)

    @property
    def templated(self) -> bool:
        """Whether the key has ``{fields}`` filled from each job."""
        return bool(_template_fields(self.key))

    def resolve(self, job: Mapping[str, Any]) -> str:
        """The concrete key for one job (``job``: user_id, queue, type, payload)."""
        if not self.templated:
            return self.key
        values = {name: _key_value(job, name) for name in _template_fields(self.key)}
        return _fill(self.key, values)

    def as_grant(self, key: str) -> dict[str, Any]:
        """This limit as the grant functions take it, for concrete ``key``."""
        count, seconds = parse_rate(self.rate) if self.rate is not None else (None, None)
        return {
            "key": key,
            "rate_count": count,
            "rate_seconds": seconds,
            "concurrency": self.concurrency,
        }


def _key_value(job: Mapping[str, Any], name: str) -> str:
    if name.startswith(_PAYLOAD_PREFIX):
        payload = job.get("payload")
        value = payload.get(name[len(_PAYLOAD_PREFIX) :]) if isinstance(payload, dict) else None
    else:
        value = job.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _fill(template: str, values: Mapping[str, str]) -> str:
    out = []
    for text, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(text)
        if name is not None:
            out.append(values[name])
    return "".join(out)[:MAX_KEY_LENGTH]


def check_limits(type_name: str, limits: Iterable[Limit]) -> tuple[Limit, ...]:
    """A job type's ``limits=`` as a tuple; refuses what is not a :class:`Limit`."""
    if isinstance(limits, Limit | str):
        raise ConfigurationError(f"{type_name}: limits must be a list of nightcrew.Limit")
    out = tuple(limits)
    for item in out:
        if not isinstance(item, Limit):
            raise ConfigurationError(f"{type_name}: limits must be nightcrew.Limit, got {item!r}")
    return out


def grant_entry(
    job_id: Any, attempt: int, limits: Sequence[Limit], job: Mapping[str, Any]
) -> dict[str, Any]:
    """One fetched job as :func:`grant` takes it."""
    return {
        "id": str(job_id),
        "attempt": attempt,
        "limits": [limit.as_grant(limit.resolve(job)) for limit in limits],
    }


@dataclass(frozen=True)
class SlotTiming:
    """When a granted slot comes, on this process's monotonic clock.

    ``sent`` is when the granting statement was sent and ``reply`` when its reply was read;
    the database said the slot comes ``wait`` seconds after it read its clock and
    ``slot_after`` seconds after the statement started (``None``: no rate applies), for a
    rate of ``period`` seconds. The server read both clocks between ``sent`` and ``reply``,
    so the slot lies between ``sent + slot_after`` and ``reply + wait``.
    """

    sent: float
    reply: float
    wait: float
    slot_after: float | None = None
    period: float | None = None

    @property
    def not_before(self) -> float:
        """When the call may go: never before its slot."""
        return self.reply + max(0.0, self.wait)

    def lateness(self, now: float) -> float | None:
        """How late a call entering at ``now`` is for its slot, at most (never less than
        the truth: a reply read late counts as late); ``None`` without a rate slot."""
        if self.slot_after is None:
            return None
        return max(0.0, now - (self.sent + self.slot_after))

    def too_late(self, now: float) -> bool:
        """Whether a call entering at ``now`` must not go (see LATE_ENTRY_FRACTION)."""
        late = self.lateness(now)
        if late is None or self.period is None:
            return False
        return late > LATE_ENTRY_FRACTION * self.period


@dataclass(frozen=True)
class LimitSlot:
    """A call let through by its limits: ``async with ctx.limit(...) as slot`` gives it, and
    ``ctx.limit_slot`` for a job started under a rate limit."""

    entered_at: float
    """When the call entered (epoch seconds, this worker's clock), as the late-entry guard
    checked it: at most 2.5 % of the rate's period after its slot (``LATE_ENTRY_FRACTION``)."""
    late: float | None
    """How late it entered for its rate slot, at most (seconds); ``None`` without a rate."""
    forfeited: int = 0
    """Slots this ``ctx.limit`` call let pass unused because it woke too late for them."""


def enter_slot(timing: SlotTiming, forfeited: int = 0) -> LimitSlot | None:
    """The call entering now, or ``None`` when it is too late for its slot."""
    now = time.monotonic()
    if timing.too_late(now):
        return None
    return LimitSlot(entered_at=time.time(), late=timing.lateness(now), forfeited=forfeited)


async def grant(
    conn: psycopg.AsyncConnection[Any], entries: Sequence[dict[str, Any]]
) -> dict[UUID, SlotTiming]:
    """Grant fetched limited jobs their limits: job id -> the timing of its slot
    (``wait`` >= 0: it may start then; < 0: it was given back, not run and its attempt
    not counted, and is due again in ``-wait`` seconds)."""
    params = {"jobs": json.dumps(entries), "hold": HOLD_SECONDS, "recheck": RECHECK_SECONDS}
    sent = time.monotonic()
    cur = await conn.execute(query("limit_grant"), params)
    rows = await cur.fetchall()
    reply = time.monotonic()
    return {
        job_id: SlotTiming(sent, reply, float(wait), after, period)
        for job_id, wait, after, period in rows
    }


@dataclass(frozen=True)
class LimitInfo:
    """A limit key as stored, with its current use."""

    key: str
    rate: str | None
    """The rate in force (the override's when overridden, else the code's)."""
    concurrency: int | None
    """The concurrency in force."""
    code_rate: str | None
    code_concurrency: int | None
    overridden: bool
    running: int
    """Concurrency slots held now (running jobs and ``ctx.limit`` blocks)."""
    backlog_seconds: float
    """How far ahead the rate's slots are taken (0: a call may go now)."""
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LimitInfo:
        """Build from a ``limit_list`` row."""
        return cls(
            key=row["key"],
            rate=format_rate(row["rate_count"], row["rate_seconds"]),
            concurrency=row["concurrency"],
            code_rate=format_rate(row["code_rate_count"], row["code_rate_seconds"]),
            code_concurrency=row["code_concurrency"],
            overridden=row["overridden"],
            running=int(row["running"]),
            backlog_seconds=float(row["backlog_seconds"]),
            updated_at=row["updated_at"],
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (HTTP API, CLI)."""
        return {
            "key": self.key,
            "rate": self.rate,
            "concurrency": self.concurrency,
            "code_rate": self.code_rate,
            "code_concurrency": self.code_concurrency,
            "overridden": self.overridden,
            "running": self.running,
            "backlog_seconds": round(self.backlog_seconds, 3),
            "updated_at": self.updated_at.isoformat(),
        }


def override_params(
    key: str, rate: str | None, concurrency: int | None, by: str | None
) -> dict[str, Any]:
    """Validated parameters of ``limit_set``."""
    check_key(key)
    if rate is None and concurrency is None:
        raise ConfigurationError(
            "give a rate, a concurrency or both (clear the override to go back to the code's)"
        )
    count, seconds = parse_rate(rate) if rate is not None else (None, None)
    _check_concurrency(concurrency)
    return {"key": key, "count": count, "seconds": seconds, "concurrency": concurrency, "by": by}


def list_limits(conn: psycopg.Connection[Any]) -> list[LimitInfo]:
    """Every stored limit key with its current use."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query("limit_list")).fetchall()
    return [LimitInfo.from_row(row) for row in rows]


def get_limit(conn: psycopg.Connection[Any], key: str) -> LimitInfo | None:
    """One stored limit key, or ``None``."""
    return next((info for info in list_limits(conn) if info.key == key), None)


def set_override(
    conn: psycopg.Connection[Any],
    key: str,
    *,
    rate: str | None,
    concurrency: int | None,
    by: str | None = None,
) -> LimitInfo:
    """Override the limits of ``key`` (both: a dimension not given is unlimited)."""
    params = override_params(key, rate, concurrency, by)
    with conn.transaction():
        conn.execute(query("limit_set"), params)
    info = get_limit(conn, key)
    assert info is not None  # just written
    return info


def clear_override(conn: psycopg.Connection[Any], key: str) -> bool:
    """Drop the override of ``key`` (the code's limits apply again); False when none."""
    check_key(key)
    with conn.transaction():
        row = conn.execute(query("limit_clear"), {"key": key}).fetchone()
    return row is not None
