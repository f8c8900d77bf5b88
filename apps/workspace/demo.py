"""The workspace application's part of ``make demo``: documents for the demo user (their
index and embedding jobs run as soon as the worker starts), a budget sheet of formulas
with a cycle and a division by zero, and three simulated editors typing into "Meeting
notes (live)" (Yjs updates) while the demo runs."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
from rich.console import Console

from workspace import collab, sheets, yjs

LIVE_TITLE = "Meeting notes (live)"
USER = "estimator"
"""The demo's user (its user API key): owns the demo documents and sheet."""

DOCUMENTS = [
    (
        "Fixing cars at home",
        "Replace worn brake pads, change the engine oil and swap a flat tyre without a mechanic.",
    ),
    ("Automobile repair shop hours", "Our automobile repair shop is open Monday to Friday."),
    ("Concrete curing", "Keep fresh concrete moist for seven days so it reaches strength."),
    ("Site safety briefing", "Hard hats, high-visibility vests and boots on site at all times."),
    ("Sourdough bread", "Feed the starter, fold the dough, bake in a hot dutch oven."),
    ("Quarterly taxes", "Small businesses file estimated tax payments every quarter."),
    ("Roof inspection checklist", "Look for cracked tiles, blocked gutters and damp in the loft."),
    ("Invoice reminder", "A friendly reminder that invoice 1042 is due at the end of the month."),
    (LIVE_TITLE, "Edited together by three people: see its Yjs state."),
]

CELLS: list[tuple[str, str | None, str | None]] = [
    ("A1", None, "1200.50"),
    ("A2", None, "830.25"),
    ("A3", None, "99.99"),
    ("B1", "=SUM(A1:A3)", None),
    ("B2", "=ROUND(AVG(A1:A3), 2)", None),
    ("B3", "=IF(B1>2000, B1*0.9, B1)", None),
    ("C1", "=B3/(A3-99.99)", None),
    ("D1", "=E1+1", None),
    ("E1", "=D1*2", None),
]
"""A small budget: sums, a discount, a #DIV/0! and a two-cell #CYCLE (D1, E1)."""

TYPING_SECONDS = 5.0
TYPING_ROUNDS = 720
"""The simulated editors type for an hour at most."""
_typing: list[asyncio.Task[None]] = []
"""The running editors' task (kept referenced so it is not collected)."""


async def prepare(url: str, console: Console, *, reload: bool, small: bool) -> None:
    """Load the demo documents, sheet and editing session unless already there."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute("SELECT count(*) FROM workspace.documents")
        row = await cur.fetchone()
        if row and row[0] and not reload:
            console.print(f"workspace demo already loaded ({row[0]} documents)")
            cur = await conn.execute(
                "SELECT id FROM workspace.documents WHERE title = %s LIMIT 1", (LIVE_TITLE,)
            )
            live = await cur.fetchone()
            if live is not None:  # new replicas: their edits merge into the stored text
                start_typing(url, UUID(str(live[0])), collab.Session(editors=3))
            return
        await conn.execute("TRUNCATE workspace.documents, workspace.sheets CASCADE")
        async with conn.transaction():
            # Act as the demo user: the sheet is claimed for it, jobs belong to nobody.
            await conn.execute("SELECT set_config('nightcrew.user_id', %s, true)", (USER,))
            ids = [await _insert(conn, title, content) for title, content in DOCUMENTS]
            for ref, formula, value in CELLS:
                number = Decimal(value) if value is not None else None
                await sheets.put_cell(conn, "budget", ref, formula, number)
            editing = collab.Session(editors=3)
            updates = [update for _ in range(10) for update in editing.round()]
            for update in updates:
                await yjs.append(conn, UUID(ids[-1]), update)
        console.print(
            f"workspace: {len(DOCUMENTS)} documents (indexing and embedding now), sheet "
            f"'budget' ({len(CELLS)} cells), {len(updates)} Yjs updates from 3 editors "
            f"({len(editing.text())} characters), who keep typing every {TYPING_SECONDS:g} s"
        )
    start_typing(url, UUID(ids[-1]), editing)


def start_typing(url: str, doc_id: UUID, editing: collab.Session) -> None:
    """Let the editors go on while the demo runs (the task ends with its event loop)."""
    _typing.append(asyncio.create_task(keep_typing(url, doc_id, editing)))


async def stop() -> None:
    """Stop the editors (before the demo closes its App)."""
    while _typing:
        task = _typing.pop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def keep_typing(url: str, doc_id: UUID, editing: collab.Session) -> None:
    """A round of the three editors every :data:`TYPING_SECONDS`, each update appended as
    the API would; bounded to :data:`TYPING_ROUNDS` rounds."""
    for _ in range(TYPING_ROUNDS):
        await asyncio.sleep(TYPING_SECONDS)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            for update in editing.round():
                await yjs.append(conn, doc_id, update)


async def _insert(conn: psycopg.AsyncConnection[Any], title: str, content: str) -> str:
    cur = await conn.execute(
        "INSERT INTO workspace.documents (owner, title, content) VALUES (%s, %s, %s) RETURNING id",
        (USER, title, content),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


def hints(base: str, user_key: str) -> list[str]:
    """Requests to try against the running demo at ``base`` with the user's API key."""
    auth = f'curl -H "Authorization: Bearer {user_key}"'
    return [
        f"Workspace page: {base}/workspace  (documents, search, the budget sheet)",
        f"{auth} '{base}/api/workspace/search?q=automobile+repair&mode=text'      # one hit",
        f"{auth} '{base}/api/workspace/search?q=automobile+repair&mode=semantic'  # + fixing cars",
        f"{auth} '{base}/api/workspace/sheets/budget'",
        f"{auth} -X PUT -H 'Content-Type: application/json' -d '{{\"value\": 500}}' "
        f"'{base}/api/workspace/sheets/budget/cells/A3'",
        f"{auth} '{base}/api/workspace/documents'   # ids; then .../documents/<id>/state",
    ]
