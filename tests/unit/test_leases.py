"""Lease bookkeeping without a database: when an unrenewed attempt is stopped, and what a
stopped attempt's context refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from nightcrew import App, JobCancelled, JobContext, LeaseLost
from nightcrew.context import JobInfo

NO_DATABASE = "postgresql://nobody@nightcrew-unit-tests.invalid:1/none"


def context(lease_seconds: float = 30) -> JobContext:
    app = App(NO_DATABASE, migrate_on_start=False)
    info = JobInfo(uuid4(), "u.t", "default", 1, 3, {}, 0, None, datetime.now(UTC))
    return JobContext(app, info, None, "unit-worker", lease_seconds=lease_seconds, leased_at=100.0)


@pytest.mark.parametrize(
    ("lease", "heartbeat", "margin"),
    [(30, 10, 7.5), (2, 0.5, 0.5), (10, 8, 1.0), (120, 60, 30.0)],
)
def test_an_unrenewed_attempt_is_stopped_before_its_lease_but_after_a_heartbeat(
    lease: float, heartbeat: float, margin: float
) -> None:
    app = App(NO_DATABASE, migrate_on_start=False, lease_seconds=lease, heartbeat_seconds=heartbeat)
    assert app.worker(queues=["q"]).lease_margin == margin
    # A healthy attempt is renewed every heartbeat: it must never be stopped in between.
    assert lease - margin > heartbeat


def test_the_lease_deadline_follows_the_latest_renewal_only() -> None:
    ctx = context(lease_seconds=30)
    assert ctx.lease_deadline == 130.0
    ctx.note_lease_renewed(110.0)
    ctx.note_lease_renewed(105.0)  # an older renewal answered late proves less
    assert ctx.lease_deadline == 140.0


@pytest.mark.parametrize(
    ("stop", "refusal"),
    [("mark_lease_lost", LeaseLost), ("interrupt", JobCancelled), ("request_cancel", JobCancelled)],
)
async def test_a_stopped_attempt_refuses_writes_before_asking_the_database(
    stop: str, refusal: type[Exception]
) -> None:
    ctx = context()
    getattr(ctx, stop)()
    with pytest.raises(refusal):
        await ctx.save(progress=1)
    with pytest.raises(refusal):
        async with ctx.transaction():
            pass
    flags: dict[str, Any] = {
        "lease_lost": ctx.lease_lost,
        "interrupted": ctx.interrupted,
        "cancelled": ctx.cancelled,
    }
    assert [name for name, on in flags.items() if on] == [
        {"mark_lease_lost": "lease_lost", "interrupt": "interrupted"}.get(stop, "cancelled")
    ]
