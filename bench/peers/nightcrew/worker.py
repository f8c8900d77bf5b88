"""Worker process for the peers' harness: ``python worker.py CONC[/FETCH[/CBATCH[/CINT_MS]]]``.

Runs one nightcrew Worker until SIGTERM; the no-op handler only calls ``record``.
"""

import asyncio
import os
import signal
import sys

from bench_common import record

from nightcrew import App

DSN = f"postgresql://postgres@127.0.0.1:{os.environ.get('PGPORT', '55432')}/nightcrew_peer"


async def main(spec: str) -> None:
    fields = [*spec.split("/"), "", "", ""]
    app = App(
        DSN, migrate_on_start=False, concurrency=int(fields[0]),
        fetch_batch=int(fields[1] or 100), complete_batch=int(fields[2] or 1000),
        complete_interval_ms=float(fields[3] or 5),
    )  # fmt: skip

    @app.job("bench.noop", max_attempts=1)
    async def noop(ctx, payload):
        record(payload["i"], payload["t"])

    worker = app.worker()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
    await worker.run()
    await app.aclose()


asyncio.run(main(sys.argv[1]))
