"""Instructions a backend executes per statement of bench/trigger_enqueue.py's variants:
a load-independent companion to its wall-clock ratios.

    python bench/trigger_enqueue_instructions.py [--statements 200]

Needs valgrind and PostgreSQL's server binaries (initdb, pg_ctl, postgres; PGBIN or
/usr/lib/postgresql/15/bin). Makes a private cluster in a temporary directory, migrates a
database and creates the benchmark's tables there (a short-lived server on a Unix socket),
stops it, then runs each variant's statement in a single-user backend under callgrind:
``PREPARE`` once, ``EXECUTE`` W and W + N times (each its own transaction, commit
included; fsync off, so the flush is not counted). (I(W + N) − I(W)) / N is the count per
statement, exact and the same on a loaded machine. Run as root, the cluster belongs to
the ``postgres`` user. Prints JSON; the ratios to the bare INSERT are in instructions, not
time (the wall-clock ratio also holds the commit's flush, the same for every variant).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import trigger_enqueue  # the variants and the set-up, from the same folder

PGBIN = Path(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "bench"
WARMUP = 30  # executions before the counted ones: plans and caches filled
# --bulk: a 1,000-row INSERT of jobs, counted per row (what a per-row cost of the row's
# checks adds to bulk writes such as enqueue_many's COPY).
BULK_ROWS = 1000
BULK = (
    "INSERT INTO nightcrew.jobs (id, type, queue, payload)"
    " SELECT gen_random_uuid(), 'bench.index', 'bench', '{}'"
    f" FROM generate_series(1, {BULK_ROWS})"
)


def _as_owner(cmd: list[str]) -> list[str]:
    """``cmd`` as the postgres user when run as root (the server refuses root)."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def make_cluster(root: Path) -> Path:
    """initdb a cluster under ``root``, migrate and set up the benchmark database."""
    data, sock = root / "data", root
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    subprocess.run(_as_owner([str(PGBIN / "initdb"), "-D", str(data), "-A", "trust",
                              "-U", "postgres"]), check=True, capture_output=True)  # fmt: skip
    opts = f"-p 5498 -k {sock} -c listen_addresses=''"
    start = [str(PGBIN / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(root / "log")]
    subprocess.run(_as_owner([*start, "start"]), check=True, capture_output=True)
    try:
        trigger_enqueue.prepare(f"host={sock} port=5498 user=postgres dbname=postgres", DATABASE)
    finally:
        subprocess.run(_as_owner([str(PGBIN / "pg_ctl"), "-D", str(data), "-w", "stop"]),
                       check=True, capture_output=True)  # fmt: skip
    return data


def instructions(data: Path, body: str, executions: int) -> int:
    """Instructions of a single-user backend that prepares ``body`` and runs it."""
    script = f"PREPARE s AS {body.strip().rstrip(';')}\n" + "EXECUTE s\n" * executions
    out = data.parent / "callgrind.out"
    subprocess.run(
        _as_owner(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                   str(PGBIN / "postgres"), "--single", "-D", str(data), "-c", "fsync=off",
                   "-c", "synchronous_commit=off", DATABASE]),
        input=script, text=True, capture_output=True, check=True,
    )  # fmt: skip
    found = re.search(r"^totals: (\d+)", out.read_text(), re.M)
    out.unlink()
    assert found is not None, "callgrind wrote no totals"
    return int(found.group(1))


def main() -> None:
    """Parse arguments, measure every variant, print the figures as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--statements", type=int, default=200, help="counted executions (N)")
    ap.add_argument("--bulk", action="store_true", help="also a 1,000-row INSERT, per row")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="nc-instr-") as tmp:
        data = make_cluster(Path(tmp))
        per: dict[str, float] = {}
        bulk_per_row = 0
        for name, body in trigger_enqueue.SCRIPTS.items():
            counted = instructions(data, body, WARMUP + args.statements)
            per[name] = (counted - instructions(data, body, WARMUP)) / args.statements
        if args.bulk:
            counted = instructions(data, BULK, 6) - instructions(data, BULK, 1)
            bulk_per_row = round(counted / (5 * BULK_ROWS))
    bare = per["bare"]
    result: dict[str, Any] = {
        "instructions_per_statement": {name: round(n) for name, n in per.items()},
        "added_to_bare": {name: round(n - bare) for name, n in per.items() if name != "bare"},
        "ratio_to_bare": {name: round(n / bare, 2) for name, n in per.items()},
    }
    if args.bulk:
        result["bulk_insert_per_row"] = bulk_per_row
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
