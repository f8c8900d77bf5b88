"""What a notification says: the event's facts (:class:`JobEvent`, :class:`AlertEvent`) and
their rendering into an email (Jinja2 templates, plain text + HTML) or a webhook body."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from importlib import resources
from typing import Any

import jinja2


def money(value: Any, places: int = 2) -> str:
    """An amount as money: ``places`` decimals (half up) and thousands separators
    (``1691.1367`` -> ``1,691.14``); ``–`` for nothing, the value itself when it is not a
    number. The ``money`` filter of the dashboard's and the emails' templates."""
    if value is None or value == "" or isinstance(value, jinja2.Undefined):
        return "–"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not amount.is_finite():
        return str(value)
    step = Decimal(1).scaleb(-places)
    return f"{amount.quantize(step, rounding=ROUND_HALF_UP):,.{places}f}"


_TEXT = jinja2.Environment(autoescape=False, undefined=jinja2.ChainableUndefined)
_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.ChainableUndefined)
_TEXT.filters["money"] = _HTML.filters["money"] = money


@dataclass(frozen=True)
class EmailTemplate:
    """A job type's own email: Jinja2 source strings rendered with ``job`` (see
    docs/notifications.md for its fields). ``html=None`` sends plain text only."""

    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class Email:
    """A rendered email."""

    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class JobEvent:
    """A job finished: what every channel says about it."""

    key: str
    job: dict[str, Any]
    """id, type, status, summary, result, error, attempts, max_attempts, duration_s,
    duration_text, created_at, started_at, completed_at, url, user_id."""
    channels: list[tuple[str, str]] = field(default_factory=list)
    untrusted_webhook: bool = False
    """The webhook was set by a user over the HTTP API: its host must be in webhook_hosts."""

    @property
    def title(self) -> str:
        """One line: ``send_report completed: 100 items updated successfully``."""
        return f"{self.job['type']} {self.job['status']}: {self.job['summary']}"

    def webhook_body(self, sent_at: datetime) -> bytes:
        """The JSON body POSTed to webhooks."""
        return _json({"id": self.key, "type": f"job.{self.job['status']}",
                      "created_at": sent_at.isoformat(), "job": self.job})  # fmt: skip


@dataclass(frozen=True)
class AlertEvent:
    """An alert opened or resolved."""

    key: str
    alert: dict[str, Any]
    """id, rule, status, state (opened|resolved), message, details, opened_at, resolved_at,
    url."""
    channels: list[tuple[str, str]] = field(default_factory=list)

    @property
    def title(self) -> str:
        """One line: ``[alert opened] failure_rate: ...``."""
        return f"[alert {self.alert['state']}] {self.alert['rule']}: {self.alert['message']}"

    def webhook_body(self, sent_at: datetime) -> bytes:
        """The JSON body POSTed to the alert webhook."""
        return _json({"id": self.key, "type": f"alert.{self.alert['state']}",
                      "created_at": sent_at.isoformat(), "alert": self.alert})  # fmt: skip


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), default=str).encode()


def summary_of(job_type: str, status: str, result: Any, error: str | None) -> str:
    """The headline of a finished job: its result's ``summary`` when the handler returned
    one, else the error of a failed job, else a generic line."""
    if isinstance(result, dict) and isinstance(result.get("summary"), str):
        return str(result["summary"])
    if status == "failed" and error:
        return error.splitlines()[0][:300] if error.strip() else "failed"
    return {"completed": "finished successfully", "failed": "failed after its last attempt",
            "cancelled": "was cancelled"}.get(status, status)  # fmt: skip


def duration_text(seconds: float | None) -> str | None:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min``."""
    if seconds is None:
        return None
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@functools.cache
def _builtin(name: str) -> str:
    return (resources.files("nightcrew.notify") / "templates" / name).read_text("utf-8")


@functools.lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> jinja2.Template:
    return (_HTML if html else _TEXT).from_string(source)


def render_job_email(event: JobEvent, template: EmailTemplate | None = None) -> Email:
    """The email of a job event, with the job type's own template when it has one."""
    ctx = {"job": event.job, "title": event.title}
    if template is None:
        subject = f"[nightcrew] {event.title}"
        text = _compile(_builtin("job.txt.j2"), False).render(ctx)
        html: str | None = _compile(_builtin("job.html.j2"), True).render(ctx)
    else:
        subject = _compile(template.subject, False).render(ctx)
        text = _compile(template.text, False).render(ctx)
        html = _compile(template.html, True).render(ctx) if template.html else None
    return Email(" ".join(subject.split())[:250], text, html)


def render_alert_email(event: AlertEvent) -> Email:
    """The email of an alert opening or resolving."""
    ctx = {"alert": event.alert}
    text = _compile(_builtin("alert.txt.j2"), False).render(ctx)
    html = _compile(_builtin("alert.html.j2"), True).render(ctx)
    return Email(" ".join(f"[nightcrew] {event.title}".split())[:250], text, html)
