"""finish_jobs counts and announces its own outcomes (migration 0016) instead of the update
trigger joining transition tables: every outcome counted once, every row announced once, and
the statement's mark covers that statement only."""

from __future__ import annotations

from uuid import UUID

import psycopg

from nightcrew.lifecycle.finish import Outcome, outcomes_json
from nightcrew.queries import query

STATUSES = ("completed", "failed", "retrying", "cancelled", "pending")


def _processing_jobs(url: str, n: int) -> list[UUID]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE nightcrew.stats_minute")
        rows = conn.execute(
            "INSERT INTO nightcrew.jobs (id, type, status, worker_id, attempts, started_at,"
            " lease_expires_at) SELECT nightcrew.uuid7(), 't.job', 'processing', 'w', 1,"
            " now() - interval '1 second', now() + interval '30 seconds'"
            " FROM generate_series(1, %s) RETURNING id",
            (n,),
        ).fetchall()
    return sorted(r[0] for r in rows)


def _finish(conn: psycopg.Connection[object], outcomes: list[Outcome]) -> list[UUID]:
    rows = conn.execute(
        query("finish_jobs"), {"worker_id": "w", "outcomes": outcomes_json(outcomes)}
    ).fetchall()
    return sorted(r[0] for r in rows)


def _stats(url: str) -> tuple[int, ...]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(completed), 0), coalesce(sum(failed), 0),"
            " coalesce(sum(retried), 0), coalesce(sum(cancelled), 0), coalesce(sum(h8), 0)"
            " FROM nightcrew.stats_minute WHERE type = 't.job'"
        ).fetchone()
    assert row is not None
    return tuple(int(v) for v in row)


def _listen(url: str) -> psycopg.Connection[object]:
    listener = psycopg.connect(url, autocommit=True)
    listener.execute("LISTEN nightcrew_events")
    return listener


def _events(listener: psycopg.Connection[object], url: str) -> list[str]:
    """Ids notified on nightcrew_events until a marker sent now."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("NOTIFY nightcrew_events, 'end'")
    ids: list[str] = []
    for note in listener.notifies(timeout=10):
        if note.payload == "end":
            return ids
        ids.extend(note.payload.split(","))
    raise AssertionError("the end marker never arrived")


def test_a_batch_counts_each_outcome_once_and_announces_every_row(clean_db: str) -> None:
    ids = _processing_jobs(clean_db, len(STATUSES))
    outcomes = [
        Outcome(job_id, 1, status, delay=60.0 if status == "retrying" else 0.0)
        for job_id, status in zip(ids, STATUSES, strict=True)
    ]
    with _listen(clean_db) as listener, psycopg.connect(clean_db, autocommit=True) as conn:
        assert _finish(conn, outcomes) == ids
        announced = _events(listener, clean_db)
    assert sorted(announced) == sorted(str(i) for i in ids)  # each row once
    # completed, failed, retried, cancelled; the released attempt (pending) is no outcome.
    # The completion ran ~1 s: histogram bucket 8 holds (0.64, 1.28] s.
    assert _stats(clean_db) == (1, 1, 1, 1, 1)


def test_a_fenced_out_batch_counts_nothing_and_leaves_no_mark(clean_db: str) -> None:
    ids = _processing_jobs(clean_db, 2)
    with psycopg.connect(clean_db) as conn:  # one transaction for both statements
        assert _finish(conn, [Outcome(ids[0], 2, "completed")]) == []  # a stale attempt
        conn.execute(
            "UPDATE nightcrew.jobs SET status = 'completed', completed_at = now() WHERE id = %s",
            (ids[1],),
        )
        conn.commit()
    assert _stats(clean_db) == (1, 0, 0, 0, 1)  # the hand-written update still counted


def test_the_mark_covers_only_the_finishing_statement(clean_db: str) -> None:
    ids = _processing_jobs(clean_db, 3)
    with _listen(clean_db) as listener:
        with psycopg.connect(clean_db) as conn:  # one transaction: finish, then two updates
            assert _finish(conn, [Outcome(ids[0], 1, "completed")]) == [ids[0]]
            conn.execute(
                "UPDATE nightcrew.jobs SET status = 'failed', completed_at = now() WHERE id = %s",
                (ids[1],),
            )
            conn.execute(
                "UPDATE nightcrew.jobs SET status = 'cancelled', completed_at = now()"
                " WHERE id = %s",
                (ids[2],),
            )
            conn.commit()
        announced = _events(listener, clean_db)
    assert sorted(announced) == sorted(str(i) for i in ids)
    assert _stats(clean_db) == (1, 1, 0, 1, 1)
