"""Sets of job states are derived from ``JobStatus``; where SQL spells one out (partial-index
predicates, queries, trigger functions), it must be one of JobStatus's named sets."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from nightcrew.http.dashboard.pages import STATUSES
from nightcrew.http.models import Status
from nightcrew.jobs import JobStatus

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "nightcrew"
IN_LIST = re.compile(r"\bIN\s*\(\s*('[a-z_]+'(?:\s*,\s*'[a-z_]+')*)\s*\)", re.IGNORECASE)

NAMED = {
    "terminal": JobStatus.terminal_states(),
    "waiting": JobStatus.waiting_states(),
    "live": JobStatus.live_states(),
    "retryable": JobStatus.retryable_states(),
}
# Sets spelled in SQL that are deliberately none of the named ones, and why.
EXCEPTIONS = {
    # The stats trigger counts attempts that ended: finished, or failed into a retry.
    ("sql/migrations/0004_http.sql", frozenset({"completed", "failed", "cancelled", "retrying"})),
    (
        "sql/migrations/0007_light_update_trigger.sql",
        frozenset({"completed", "failed", "cancelled", "retrying"}),
    ),
    # Schedule statistics count the runs that ended completed or failed (not cancelled).
    ("sql/migrations/0012_operations.sql", frozenset({"completed", "failed"})),
    # Retention: completed and cancelled jobs share one age limit, failed ones another.
    ("sql/queries/prune_jobs.sql", frozenset({"completed", "cancelled"})),
}
# IN-lists of other enums that share a word with the job states.
OTHER_ENUMS = {frozenset({"pending", "sent", "failed"})}  # notification deliveries


def spelled_sets() -> list[tuple[str, frozenset[str]]]:
    """Every IN-list of job states in the package's SQL (and inline SQL in Python)."""
    values = {status.value for status in JobStatus}
    found = []
    for path in sorted([*PACKAGE.rglob("*.sql"), *PACKAGE.rglob("*.py")]):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))
        for match in IN_LIST.finditer(text):
            words = frozenset(re.findall(r"'([a-z_]+)'", match[1]))
            if words & values and words not in OTHER_ENUMS:
                found.append((path.relative_to(PACKAGE).as_posix(), words))
    return found


def test_sets_spelled_in_sql_are_named_sets_of_jobstatus() -> None:
    spelled = spelled_sets()
    assert len(spelled) > 10  # the scan sees the queries and migrations
    named = {frozenset(s.value for s in states) for states in NAMED.values()}
    wrong = [(path, sorted(words)) for path, words in spelled
             if words not in named and (path, words) not in EXCEPTIONS]  # fmt: skip
    assert not wrong, f"not a named set of JobStatus (see jobs.py): {wrong}"


def test_named_sets_are_consistent() -> None:
    assert JobStatus.terminal_states() | JobStatus.live_states() == set(JobStatus)
    assert not JobStatus.terminal_states() & JobStatus.live_states()
    assert JobStatus.retryable_states() <= JobStatus.terminal_states()
    assert all(status.terminal == (status in JobStatus.terminal_states()) for status in JobStatus)


def test_http_and_dashboard_use_jobstatus() -> None:
    assert Status is JobStatus
    assert tuple(status.value for status in JobStatus) == STATUSES


def test_the_database_enum_is_jobstatus(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        labels = conn.execute(
            "SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum"
            " WHERE enumtypid = 'nightcrew.job_status'::regtype"
        ).fetchone()
    assert labels == ([status.value for status in JobStatus],)
