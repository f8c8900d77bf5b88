"""The admin's email about dead letters (``admin_email``, ``NIGHTCREW_ADMIN_EMAIL``).

Every job that ends ``failed`` is recorded by the trigger that ends it
(``nightcrew.dead_letters``), numbered within the minute it died in. The built-in
``nightcrew.dead_letter_mail`` schedule fires once a minute (one delivery job per minute:
its ticks are unique) and mails the dead letters of the minutes that have ended:

* the first :data:`SINGLE_LIMIT` (10) of a minute each in an email of its own, with the
  job's type, error and a link to its dashboard page;
* the 11th and later of that minute together in one email listing them.

So 1 dead job makes 1 email, and 15 within one minute make 10 emails and then 1 listing the
other 5. An email is sent at most a minute or so after the minute its job died in. Each is a
delivery (``nightcrew.deliveries``, claimed and recorded like every notification), so a
run that finds the mail server down leaves the rest for the next minute's run and never
sends one twice; one still undelivered an hour later is given up (recorded as failed).
Without ``admin_email`` the runs only forget the recorded dead letters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from psycopg.rows import dict_row

from nightcrew.db.clock import database_now
from nightcrew.notify.install import DEAD_LETTER_JOB as DEAD_LETTER_JOB  # re-exported
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App
    from nightcrew.context import JobContext

log = logging.getLogger("nightcrew.notify")

SINGLE_LIMIT = 10
"""Dead letters of one minute mailed one by one; the rest of the minute go in one email."""
GIVE_UP_AFTER = timedelta(hours=1)
_BATCH = 5000


@dataclass(frozen=True)
class MailEvent:
    """An email to the admin about dead letters: its delivery key and its words."""

    key: str
    subject: str
    text: str
    job_ids: tuple[str, ...]
    """The dead jobs it tells about (one for a single email)."""

    @property
    def title(self) -> str:
        """The subject line."""
        return self.subject


def _first_line(error: str | None) -> str:
    lines = (error or "").strip().splitlines()
    return lines[0][:300] if lines else "(no error message)"


def single_email(row: dict[str, Any], base_url: str) -> MailEvent:
    """The email about one dead job: type, error and dashboard link."""
    job_id = str(row["job_id"])
    text = (
        f"A {row['type']} job failed for good (dead letter).\n\n"
        f"Job:    {job_id}\nType:   {row['type']}\nDied:   {row['died_at'].isoformat()}\n"
        f"Error:  {(row['error'] or '(no error message)').strip()[:4000]}\n\n"
        f"Details: {base_url}/jobs/{job_id}\nDead letters: {base_url}/dead\n"
    )
    subject = f"[nightcrew] dead letter: {row['type']}: {_first_line(row['error'])}"
    return MailEvent(f"dead:{job_id}", " ".join(subject.split())[:250], text, (job_id,))


def grouped_email(rows: Sequence[dict[str, Any]], base_url: str) -> MailEvent:
    """One email listing the dead jobs of a minute beyond the first :data:`SINGLE_LIMIT`."""
    minute: datetime = rows[0]["minute"]
    at = minute.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"- {r['type']} {r['job_id']}: {_first_line(r['error'])}\n  {base_url}/jobs/"
             f"{r['job_id']}" for r in rows]  # fmt: skip
    text = (
        f"{len(rows)} more jobs failed for good in the minute of {at}, after the "
        f"{SINGLE_LIMIT} mailed one by one:\n\n" + "\n".join(lines)
        + f"\n\nDead letters: {base_url}/dead\n"
    )  # fmt: skip
    subject = f"[nightcrew] {len(rows)} more dead letters in the minute of {at}"
    ids = tuple(str(r["job_id"]) for r in rows)
    return MailEvent(f"dead-group:{minute.isoformat()}:{ids[0]}", subject, text, ids)


def dead_letter_emails(rows: Sequence[dict[str, Any]], base_url: str) -> list[MailEvent]:
    """The emails of the dead letters ``rows`` (ordered by minute, then seq)."""
    emails: list[MailEvent] = []
    rest: dict[datetime, list[dict[str, Any]]] = {}
    for row in rows:
        if row["seq"] <= SINGLE_LIMIT:
            emails.append(single_email(row, base_url))
        else:
            rest.setdefault(row["minute"], []).append(row)
    emails += [grouped_email(group, base_url) for group in rest.values()]
    return emails


async def mail_dead_letters(app: App, *, now: datetime | None = None) -> dict[str, Any]:
    """Mail the dead letters of the minutes ended before ``now`` (default: the database's
    clock) to ``admin_email``; forget those sent or given up. Returns what was done."""
    from nightcrew.notify.handler import deliver  # the handler imports this module's event

    pool = await app.apool()
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        now = await database_now(conn, now)
        before = now.replace(second=0, microsecond=0)
        await cur.execute(query("dead_letters_closed"), {"before": before, "limit": _BATCH})
        rows = await cur.fetchall()
    admin = app.settings.admin_email
    done: list[str] = [str(row["job_id"]) for row in rows]
    results: dict[str, str] = {}
    if admin and rows:
        done = []
        base_url = app.settings.dashboard_url.rstrip("/")
        died = {str(row["job_id"]): row["minute"] for row in rows}
        for mail in dead_letter_emails(rows, base_url):
            last_try = died[mail.job_ids[0]] < now - GIVE_UP_AFTER
            results[mail.key] = await deliver(app, mail, "email", admin, last_try=last_try)
            if results[mail.key] != "pending":
                done += mail.job_ids
    async with pool.connection() as conn:
        await conn.execute(query("dead_letters_done"), {"ids": done, "before": before})
    pending = sorted(key for key, status in results.items() if status == "pending")
    if pending:
        log.warning("dead-letter emails not sent yet (next minute's run retries): %s", pending)
    return {"dead_letters": len(rows), "emails": results, "pending": pending,
            "summary": f"{len(results)} email(s) for {len(rows)} dead letter(s)"}  # fmt: skip


async def dead_letter_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Handler of ``nightcrew.dead_letter_mail`` (see the module's docstring)."""
    return await mail_dead_letters(ctx.app)


def dead_letter_job_id(event: MailEvent) -> UUID | None:
    """The job a delivery of ``event`` is recorded against (a single dead job's email)."""
    return UUID(event.job_ids[0]) if len(event.job_ids) == 1 else None
