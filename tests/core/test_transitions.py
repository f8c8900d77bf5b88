"""The transition table of docs/architecture.md names every statement that writes
``nightcrew.jobs`` and its single Python caller: a new writer (or a second caller) fails here
until the table says so."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "nightcrew"
SQL = PACKAGE / "sql"
TABLE = ROOT / "docs" / "architecture.md"

# A statement that creates, changes or removes rows of the jobs table.
WRITES_JOBS = re.compile(
    r"\b(?:UPDATE|DELETE\s+FROM|INSERT\s+INTO)\s+(?:nightcrew\.)?jobs\b(?!_)", re.IGNORECASE
)
ROW = re.compile(r"^\|\s*`(?P<file>[^`]+\.sql)`\s*\|(?P<change>[^|]+)\|(?P<caller>[^|]+)\|\s*$")


def strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*", "", text)


def writers() -> set[str]:
    """The .sql files (relative to sql/) that write the jobs table."""
    return {
        path.relative_to(SQL).as_posix()
        for path in SQL.rglob("*.sql")
        if WRITES_JOBS.search(strip_comments(path.read_text(encoding="utf-8")))
    }


def table() -> dict[str, str]:
    """statement file -> caller cell, from docs/architecture.md."""
    rows = (ROW.match(line) for line in TABLE.read_text(encoding="utf-8").splitlines())
    return {m["file"]: m["caller"] for m in rows if m}


def callers_of(name: str) -> set[str]:
    """The modules (relative to src/nightcrew/) that name the query (a quoted name is how a
    module runs one: ``query("name")``, or a helper given the name)."""
    pattern = re.compile(rf"""["']{re.escape(name)}["']""")
    return {
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    }


def test_every_statement_writing_jobs_is_in_the_table() -> None:
    missing = writers() - set(table())
    assert not missing, (
        f"add these to the transition table of docs/architecture.md: {sorted(missing)}"
    )


def test_the_table_names_only_existing_files() -> None:
    stale = {name for name in table() if not (SQL / name).is_file()}
    assert not stale, f"docs/architecture.md names files that do not exist: {sorted(stale)}"


def test_each_query_runs_only_from_the_caller_the_table_names() -> None:
    for name, caller in table().items():
        if not name.startswith("queries/"):
            continue  # migrations' functions run in the database
        named = set(re.findall(r"`([\w/]+\.py)`", caller))
        actual = callers_of(Path(name).stem)
        assert actual == named, f"{name}: run from {sorted(actual)}, table says {sorted(named)}"


def test_operator_actions_are_written_by_control_only() -> None:
    for name in ("job_cancel", "job_retry", "job_set_priority", "job_discard"):
        assert callers_of(name) == {"lifecycle/control.py"}, name


def test_the_check_catches_a_writer_missing_from_the_table(tmp_path: Path) -> None:
    # The pattern the table check relies on sees the forms a writer takes.
    for text in ("UPDATE nightcrew.jobs AS j SET", "update jobs set", "DELETE FROM nightcrew.jobs",
                 "INSERT INTO nightcrew.jobs (id)"):  # fmt: skip
        assert WRITES_JOBS.search(text), text
    for text in ("AFTER UPDATE ON nightcrew.jobs", "UPDATE nightcrew.jobs_history SET",
                 "-- UPDATE nightcrew.jobs"):  # fmt: skip
        assert not WRITES_JOBS.search(strip_comments(text)), text
