"""Rendering: the Jinja2 environment, the page context every template gets, and filters."""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from nightcrew.http.dashboard.auth import csrf_token, nightcrew_app, session_id, verified_flash
from nightcrew.http.session import Session
from nightcrew.notify.render import duration_text

if TYPE_CHECKING:
    from nightcrew.app import App

NAV = [("Overview", "/"), ("Jobs", "/jobs"), ("Dead letter", "/dead"), ("Queues", "/queues"),
       ("Schedules", "/schedules"), ("Alerts", "/alerts")]  # fmt: skip
_ENVIRONMENTS: weakref.WeakKeyDictionary[App, Environment] = weakref.WeakKeyDictionary()


def environment(app: App) -> Environment:
    """The template environment of ``app``: nightcrew's templates, then each app page's."""
    env = _ENVIRONMENTS.get(app)
    if env is None:
        loaders = [PackageLoader("nightcrew.http.dashboard", "templates")]
        loaders += [PackageLoader(p.templates, "templates") for p in app.dashboard_pages
                    if p.templates]  # fmt: skip
        env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters.update(
            ago=ago, when=when, duration=duration, pretty=pretty, progress_label=progress_label
        )
        _ENVIRONMENTS[app] = env
    return env


async def render(
    request: Request, session: Session, template: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """Render ``template`` with the page context (user, navigation, CSRF token, badge)."""
    app = nightcrew_app(request)
    principal = session.principal
    badge = await session.one("notify_inbox_unread", {"user_id": principal.user_id})
    nav = NAV if principal.is_admin else [n for n in NAV if n[1] != "/alerts"]
    nav = nav + [(page.title, page.path) for page in app.dashboard_pages]
    html = (
        environment(app)
        .get_template(template)
        .render(
            request=request,
            path=request.url.path,
            user=principal.user_id,
            is_admin=principal.is_admin,
            csrf=csrf_token(session_id(request) or ""),
            nav=nav,
            unread=badge["unread"] if badge else 0,
            flash=verified_flash(request),  # only this session's own, fresh messages
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


SECURITY_HEADERS = {
    # Everything is served from this origin: no CDN, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``3 min ago`` / ``in 2 h`` (empty for ``None``)."""
    if value is None:
        return ""
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    text = _span(abs(seconds))
    if text == "now":
        return "just now"
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def _span(seconds: float) -> str:
    if seconds < 1:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def when(value: datetime | None) -> str:
    """An absolute UTC timestamp, to the second."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def duration(seconds: float | timedelta | None) -> str:
    """``850 ms``, ``12.3 s``, ``4 min 05 s``, ``2 h 03 min`` (the notification emails' wording)."""
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return duration_text(seconds) or "–"


def pretty(value: Any) -> str:
    """Indented JSON for payloads and results."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def metrics_text(metrics: dict[str, Any] | None) -> str:
    """``3/5, $0.45``: ``done``/``total`` as a fraction, ``cost*`` keys as dollars, others
    as ``name value``."""
    if not metrics:
        return ""
    parts = []
    if "done" in metrics and "total" in metrics:
        parts.append(f"{metrics['done']}/{metrics['total']}")
    for name, value in metrics.items():
        if name in ("done", "total"):
            continue
        if "cost" in name and isinstance(value, int | float):
            parts.append(f"${value:.2f}")
        else:
            parts.append(f"{name} {value}")
    return ", ".join(parts)


def progress_label(job: Any) -> str:
    """``Enriching contacts... 50% (3/5, $0.45)`` (``job`` a dict or an object)."""

    def get(name: str) -> Any:
        return job.get(name) if isinstance(job, dict) else getattr(job, name, None)

    stage = get("stage")
    text = f"{stage}... " if stage else ""
    text += f"{round(get('progress') or 0)}%"
    extra = metrics_text(get("metrics"))
    return f"{text} ({extra})" if extra else text


def cron_words(cron: str | None, every: timedelta | None, timezone: str) -> str:
    """``Every day at 02:00 Europe/London``, ``Every 15 minutes``..."""
    if cron is None:
        return f"Every {_interval(every)}" if every else ""
    options = Options()
    options.use_24hour_time_format = True
    try:
        text = ExpressionDescriptor(cron, options).get_description()
    except (FormatException, ValueError, KeyError):
        return f"{cron} ({timezone})"
    fields = cron.split()
    daily = len(fields) >= 5 and fields[-3:] == ["*", "*", "*"]
    if daily and text.startswith("At ") and "," not in text:
        text = "Every day at " + text[3:]
    return f"{text} {timezone}"


def _interval(every: timedelta) -> str:
    seconds = int(every.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} seconds"
