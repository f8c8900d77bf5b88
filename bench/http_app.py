"""The App ``make bench`` serves with ``nightcrew serve --app http_app:app`` (cwd ``bench/``).

One no-op job type; the database comes from ``NIGHTCREW_DATABASE_URL``, every other setting
is the default a user gets.
"""

from __future__ import annotations

from nightcrew import App, JobContext

app = App(migrate_on_start=False)


@app.job("bench.noop")
async def noop(ctx: JobContext, payload: dict[str, object]) -> None:
    """Never run: the benchmark only enqueues."""
    return None
