"""The soak drill's 10-second sampler (drills/soak.py) costs the same in the last minute as
in the first: it scans neither ``jobs_history`` (which grows all through the soak) nor
``nightcrew.jobs`` whole. A sampler whose scans grew stalled the jobs it measured and made
the last minute's pickup p99 grow on an idle machine (docs/operations.md, "Soak").

Checked on the plan PostgreSQL chooses with the tables filled as in a soak's last minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from drills.soak import SAMPLE

HISTORY_ROWS = 20_000
JOBS_ROWS = 5_000


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


@pytest.fixture(scope="module")
def soaked(db_url: str) -> str:
    """Finished jobs archived to ``jobs_history`` and a minute's worth in ``jobs``, analyzed."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SELECT nightcrew.history_partition(now())")
        conn.execute(
            """INSERT INTO nightcrew.jobs_history (id, type, queue, status, created_at,
                                                   completed_at, job)
               SELECT gen_random_uuid(), 'drill.noop', 'default', 'completed', now(), now(),
                      jsonb_build_object('started_at', now(), 'run_at', now())
               FROM generate_series(1, %s)""",
            (HISTORY_ROWS,),
        )
        conn.execute(
            """INSERT INTO nightcrew.jobs (id, type, status, started_at, completed_at)
               SELECT gen_random_uuid(), 'drill.noop', 'completed', now(), now()
               FROM generate_series(1, %s)""",
            (JOBS_ROWS,),
        )
        conn.execute("ANALYZE nightcrew.jobs")
        conn.execute("ANALYZE nightcrew.jobs_history")
    return db_url


def test_the_sampler_scans_neither_history_nor_the_whole_jobs_table(soaked: str) -> None:
    with psycopg.connect(soaked, autocommit=True) as conn:
        row: Any = conn.execute(f"EXPLAIN (FORMAT JSON) {SAMPLE}").fetchone()
    nodes = list(_nodes(row[0][0]["Plan"]))
    touched = {n.get("Relation Name") for n in nodes} - {None}
    assert not {r for r in touched if r.startswith("jobs_history")}, touched
    whole_scans = [n for n in nodes if n["Node Type"] == "Seq Scan"
                   and n.get("Relation Name") == "jobs"]  # fmt: skip
    assert not whole_scans
