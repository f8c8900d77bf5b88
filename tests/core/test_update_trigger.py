"""The statement trigger on job updates: event ids for visible changes, statistics only for
outcomes. Statements that leave every row in 'processing' take a shorter path (0007)."""

from __future__ import annotations

import psycopg

ROWS = (
    "INSERT INTO nightcrew.jobs (id, type, status, worker_id, started_at, lease_expires_at)"
    " SELECT nightcrew.uuid7(), 't.job', 'processing', 'w', now() - interval '1 second',"
    " now() + interval '30 seconds' FROM generate_series(1, 3)"
)


def _events_after(url: str, statement: str) -> list[str]:
    """Ids notified on nightcrew_events by one statement (delivered at its commit)."""
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute("LISTEN nightcrew_events")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(statement)
            conn.execute("NOTIFY nightcrew_events, 'end'")  # a marker: stop reading here
        ids: list[str] = []
        for note in listener.notifies(timeout=10):
            if note.payload == "end":
                return ids
            ids.extend(note.payload.split(","))
    raise AssertionError("the end marker never arrived")


def _outcomes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(completed + failed + retried + cancelled), 0)"
            " FROM nightcrew.stats_minute"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_processing_updates_send_events_and_count_nothing(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(ROWS)
        ids = sorted(str(r[0]) for r in conn.execute("SELECT id FROM nightcrew.jobs"))
    progressed = _events_after(
        clean_db, "UPDATE nightcrew.jobs SET progress = 40, stage = 'half' WHERE true"
    )
    assert sorted(progressed) == ids
    renewed = _events_after(
        clean_db, "UPDATE nightcrew.jobs SET lease_expires_at = now() + interval '1 minute'"
    )
    assert renewed == []  # a lease renewal changes nothing a viewer sees
    assert _outcomes(clean_db) == 0


def test_outcomes_are_counted_and_sent(clean_db: str) -> None:
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute(ROWS)
        first = conn.execute("SELECT id FROM nightcrew.jobs LIMIT 1").fetchone()
    assert first is not None
    finished = _events_after(
        clean_db,
        f"UPDATE nightcrew.jobs SET status = CASE WHEN id = '{first[0]}' THEN 'failed'"
        " ELSE 'completed' END::nightcrew.job_status, completed_at = now()",
    )
    assert len(finished) == 3
    with psycopg.connect(clean_db) as conn:
        row = conn.execute(
            "SELECT sum(completed), sum(failed), sum(h8), sum(h0 + h1 + h2 + h3 + h4 + h5 + h6"
            " + h7 + h9 + h10 + h11 + h12 + h13 + h14 + h15 + h16 + h17 + h18 + h19 + h20"
            " + h21), sum(duration_sum) FROM nightcrew.stats_minute WHERE type = 't.job'"
        ).fetchone()
    assert row is not None
    # Both completions ran ~1 s (started a second before the insert): bucket 8 holds
    # durations in (0.64, 1.28] s. The failure counts, but has no duration.
    assert row[:4] == (2, 1, 2, 0)
    assert 2.0 <= row[4] < 2.56
