"""Health alerts: rules checked every ``alert_check_seconds`` (the ``nightcrew.alerts`` job,
on a schedule), each open alert notified once when it opens and once when it resolves.

Rules (thresholds are settings):

* ``failure_rate``: failed / (completed + failed) over the last hour > 10 %, once at
  least 20 jobs finished in the window (read from the per-minute stats rollup).
* ``queue_depth``: more than 100 runnable jobs waiting, continuously for 5 minutes.
* ``job_overdue``: a job still ``processing`` past its timeout.
* ``schedule_late:<name>``: an enabled schedule without a success for 2 of its periods.
* ``type_stale:<type>``: a watched job type (``alert_stale_types``) without a success for
  longer than its threshold.

:func:`evaluate_alerts` is one pass; tests call it directly with a chosen ``now``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from nightcrew.db.clock import database_now
from nightcrew.notify.install import NOTIFY_JOB, NOTIFY_MAX_ATTEMPTS
from nightcrew.queries import query

if TYPE_CHECKING:
    from nightcrew.app import App
    from nightcrew.config import Settings
    from nightcrew.context import JobContext

log = logging.getLogger("nightcrew.alerts")

# Serialises concurrent passes ("ncalerts" as ASCII), so two never open the same alert twice.
_LOCK_KEY = 0x6E63616C65727473


@dataclass(frozen=True)
class Finding:
    """A rule whose condition holds now."""

    rule: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    hold_seconds: float = 0.0
    """How long the condition must hold before the alert opens."""


@dataclass
class AlertPass:
    """What one :func:`evaluate_alerts` pass found and did."""

    firing: list[str] = field(default_factory=list)
    opened: list[tuple[int, str]] = field(default_factory=list)
    resolved: list[tuple[int, str]] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


Conn = psycopg.AsyncConnection[Any]


async def _rows(conn: Conn, name: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query(name), params)
        return await cur.fetchall()


async def failure_rate(conn: Conn, s: Settings, now: datetime) -> list[Finding]:
    """Failure rate of the window above the threshold, over enough jobs."""
    since = now - timedelta(seconds=s.alert_failure_window_seconds)
    row = (await _rows(conn, "alert_failure_rate", {"since": since, "now": now}))[0]
    total = row["completed"] + row["failed"]
    if total < s.alert_failure_min_jobs or row["failed"] <= s.alert_failure_rate * total:
        return []
    rate = row["failed"] / total
    window = s.alert_failure_window_seconds / 60
    return [Finding("failure_rate", f"{rate:.0%} of jobs failed in the last {window:g} minutes "
                    f"({row['failed']} of {total}; threshold {s.alert_failure_rate:.0%})",
                    {"failed": row["failed"], "total": total, "rate": rate})]  # fmt: skip


async def queue_depth(conn: Conn, s: Settings, now: datetime) -> list[Finding]:
    """More runnable jobs waiting than the threshold."""
    limit = s.alert_queue_depth + 1
    depth = (await _rows(conn, "alert_queue_depth", {"now": now, "limit": limit}))[0]["depth"]
    if depth <= s.alert_queue_depth:
        return []
    held = s.alert_queue_depth_seconds / 60
    return [Finding("queue_depth", f"more than {s.alert_queue_depth} jobs waiting for "
                    f"{held:g} minutes or longer: add workers",
                    {"threshold": s.alert_queue_depth}, s.alert_queue_depth_seconds)]  # fmt: skip


async def job_overdue(conn: Conn, s: Settings, now: datetime) -> list[Finding]:
    """Jobs processing past their timeout."""
    rows = await _rows(conn, "alert_overdue", {"now": now, "slack": s.alert_overdue_slack_seconds})
    if not rows:
        return []
    jobs = [{"id": str(r["id"]), "type": r["type"], "worker_id": r["worker_id"],
             "started_at": r["started_at"].isoformat(), "timeout_seconds": r["timeout_seconds"]}
            for r in rows]  # fmt: skip
    more = "+" if len(rows) == 20 else ""
    first = jobs[0]
    return [Finding("job_overdue", f"{len(rows)}{more} job(s) processing past their timeout, "
                    f"e.g. {first['type']} {first['id']} (timeout {first['timeout_seconds']:g}s)",
                    {"jobs": jobs})]  # fmt: skip


async def schedule_late(conn: Conn, s: Settings, now: datetime) -> list[Finding]:
    """Enabled schedules without a success for ``alert_schedule_periods`` periods."""
    from nightcrew.scheduler.schedules import Schedule

    findings = []
    for row in await _rows(conn, "alert_schedules", {}):
        reference = row["last_success_at"] or row["created_at"]
        reference = max(reference, row["created_at"])
        schedule = Schedule.from_row(row)
        deadline = reference
        for _ in range(s.alert_schedule_periods):
            deadline = schedule.next_after(deadline)
        if now > deadline:
            since = "never succeeded" if row["last_success_at"] is None else \
                f"last succeeded for the tick of {row['last_success_at'].isoformat()}"  # fmt: skip
            findings.append(Finding(
                f"schedule_late:{row['name']}",
                f"schedule {row['name']!r} has not succeeded for {s.alert_schedule_periods} "
                f"periods ({since})",
                {"schedule": row["name"], "last_success_at": row["last_success_at"]},
            ))  # fmt: skip
    return findings


async def type_stale(
    conn: Conn, s: Settings, now: datetime, types: dict[str, float]
) -> list[Finding]:
    """Watched job types whose last success is older than their threshold."""
    if not types:
        return []
    rows = await _rows(conn, "alert_type_last_success", {
        "now": now, "types": list(types), "thresholds": list(types.values())})  # fmt: skip
    findings = []
    for row in rows:
        history = row["history_since"]
        enough_history = history is not None and history <= now - timedelta(
            seconds=row["threshold"]
        )
        if row["last_success"] is None and enough_history:
            findings.append(Finding(
                f"type_stale:{row['type']}",
                f"job type {row['type']!r} has not succeeded for over {row['threshold']:g}s",
                {"type": row["type"], "threshold_seconds": row["threshold"]},
            ))  # fmt: skip
    return findings


def watched_types(app: App) -> dict[str, float]:
    """``alert_stale_types`` with ``"*"`` expanded to the app's own job types."""
    configured = dict(app.settings.alert_stale_types)
    default = configured.pop("*", None)
    if default is not None:
        for name in app.registry:
            if not name.startswith("nightcrew."):
                configured.setdefault(name, default)
    return configured


async def _notify(app: App, conn: Conn, alert_id: int, state: str) -> None:
    s = app.settings
    if not (s.alert_emails or s.alert_webhook) or NOTIFY_JOB not in app.registry:
        return
    key = f"alert:{alert_id}:{state}"
    payload = {"kind": "alert", "alert_id": alert_id, "state": state, "event_key": key}
    await app.aenqueue(NOTIFY_JOB, payload, dedupe_key=f"notify:{key}",
                       max_attempts=NOTIFY_MAX_ATTEMPTS, conn=conn)  # fmt: skip


async def evaluate_alerts(app: App, now: datetime | None = None) -> AlertPass:
    """Check every rule once; open alerts whose condition holds (notifying each once) and
    resolve open alerts whose condition cleared. A rule whose check fails is logged and its
    open alerts are left alone."""
    s = app.settings
    result = AlertPass()
    pool = await app.apool()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        now = await database_now(conn, now)
        stale = watched_types(app)
        rules: dict[str, Callable[[], Awaitable[list[Finding]]]] = {
            "failure_rate": lambda: failure_rate(conn, s, now),
            "queue_depth": lambda: queue_depth(conn, s, now),
            "job_overdue": lambda: job_overdue(conn, s, now),
            "schedule_late": lambda: schedule_late(conn, s, now),
            "type_stale": lambda: type_stale(conn, s, now, stale),
        }
        findings: list[Finding] = []
        checked: list[str] = []
        for family, check in rules.items():
            try:
                async with conn.transaction():  # a failing rule rolls back alone
                    findings += await check()
                checked.append(family)
            except (psycopg.Error, ValueError, KeyError) as exc:
                result.errors[family] = str(exc)
                log.warning("alert rule %s could not be checked: %s", family, exc)
        firing: dict[str, Finding] = {}
        for finding in findings:
            if finding.hold_seconds > 0:
                cur = await conn.execute(query("alert_watch_start"),
                                         {"rule": finding.rule, "now": now})  # fmt: skip
                since_row = await cur.fetchone()
                assert since_row is not None
                if (now - since_row[0]).total_seconds() < finding.hold_seconds:
                    continue
            firing[finding.rule] = finding
        held = [f.rule for f in findings if f.hold_seconds > 0]
        await conn.execute(query("alert_watch_clear"), {"families": checked, "holding": held})
        cur = await conn.execute(query("alert_open_list"))
        open_rules = {rule for _, rule in await cur.fetchall()}
        for rule, finding in firing.items():
            if rule in open_rules:
                continue
            cur = await conn.execute(query("alert_open"), {
                "rule": rule, "message": finding.message, "now": now,
                "details": json.dumps(finding.details, default=str)})  # fmt: skip
            opened = await cur.fetchone()
            if opened is not None:
                result.opened.append((opened[0], rule))
                await _notify(app, conn, opened[0], "opened")
        clear = [r for r in open_rules if r.split(":", 1)[0] in checked and r not in firing]
        if clear:
            cur = await conn.execute(query("alert_resolve"), {"rules": clear, "now": now})
            for alert_id, rule in await cur.fetchall():
                result.resolved.append((alert_id, rule))
                await _notify(app, conn, alert_id, "resolved")
        result.firing = sorted(firing)
    for alert_id, rule in result.opened:
        log.warning("alert %d opened: %s: %s", alert_id, rule, firing[rule].message)
    for alert_id, rule in result.resolved:
        log.info("alert %d resolved: %s", alert_id, rule)
    return result


async def alerts_job(ctx: JobContext, payload: Any) -> dict[str, Any]:
    """Handler of ``nightcrew.alerts``: one :func:`evaluate_alerts` pass."""
    done = await evaluate_alerts(ctx.app)
    return {"firing": done.firing, "opened": [r for _, r in done.opened],
            "resolved": [r for _, r in done.resolved], "errors": done.errors,
            "summary": f"{len(done.firing)} firing, {len(done.opened)} opened, "
                       f"{len(done.resolved)} resolved"}  # fmt: skip
