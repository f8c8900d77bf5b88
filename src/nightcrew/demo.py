"""``make demo``: enqueue a few jobs, run a worker, watch them finish with Rich progress bars.

Uses the embedded PostgreSQL unless ``NIGHTCREW_DATABASE_URL`` is set.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from nightcrew import App, JobContext, JobStatus

app = App()


@app.job("demo.update_prices", max_attempts=3, backoff=0.2)
async def update_prices(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Update ``items`` prices in batches of 10, checkpointing after every batch."""
    items = int(payload["items"])
    start = ctx.checkpoint["done"] if ctx.checkpoint else 0
    for done in range(start, items, 10):
        await asyncio.sleep(random.uniform(0.02, 0.08))  # the batch's database work
        if payload.get("flaky") and ctx.job.attempt == 1 and done >= items // 2:
            raise ConnectionError("supplier API timed out (the retry resumes from the checkpoint)")
        batch_end = min(done + 10, items)
        await ctx.save(
            progress=100 * batch_end / items,
            stage=f"updating items {done + 1}-{batch_end}",
            metrics={"updated": batch_end},
            checkpoint={"done": batch_end},
        )
    return {"summary": f"{items} items updated successfully", "resumed_from": start}


async def main() -> None:
    """Run the demo."""
    console = Console()
    console.print(f"[bold]nightcrew demo[/] — database: {app.url}")
    ids = await app.aenqueue_many(
        [
            {"type": "demo.update_prices", "payload": {"items": n, "flaky": n == 120}}
            for n in (80, 120, 200, 60)
        ]
    )
    worker = app.worker(concurrency=4)
    runner = asyncio.create_task(worker.run())
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.fields[stage]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars = {i: progress.add_task(f"job {str(i)[-6:]}", total=100, stage="") for i in ids}
        while True:
            jobs = [await app.aget_job(i) for i in ids]
            for job in jobs:
                if job is not None:
                    label = f"{job.stage or job.status.value} (attempt {job.attempts})"
                    progress.update(bars[job.id], completed=job.progress, stage=label)
            if all(j is not None and j.status.terminal for j in jobs):
                break
            await asyncio.sleep(0.1)
    worker.stop()
    await runner
    for job_id in ids:
        job = await app.aget_job(job_id)
        assert job is not None
        colour = "green" if job.status is JobStatus.COMPLETED else "red"
        summary = (job.result or {}).get("summary", job.error)
        console.print(
            f"[{colour}]{job.status.value}[/] {job.id}: {summary} (attempts {job.attempts})"
        )
    await app.aclose()


if __name__ == "__main__":
    asyncio.run(main())
