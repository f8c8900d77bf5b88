"""The App that the multi-process scheduler tests run with ``nightcrew worker``.

It reads its database URL from ``NIGHTCREW_DATABASE_URL`` (set by the test)."""

from __future__ import annotations

from typing import Any

from nightcrew import App

app = App(poll_seconds=0.2, pool_max_size=4)


@app.job("tick.noop", queue="ticks")
async def noop(ctx: Any, payload: Any) -> None:
    return None


app.schedule("tick.noop", name="every-second", cron="* * * * * *")
app.schedule("tick.noop", name="nightly", cron="0 2 * * *", timezone="Europe/London")
