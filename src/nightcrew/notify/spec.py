"""What a job asks to be notified about: the ``notify`` argument of enqueue, validated.

``{"email": "ops@example.com", "webhook": "https://example.com/hook", "in_app": true,
"on": ["completed", "failed", "cancelled"]}``; every key is optional, ``on`` defaults to
completed and failed. Stored as the job's ``notify`` column (JSON).

``notify="owner"`` instead notifies the job's owner (its ``user_id``) as their own
preferences say (``nightcrew.notification_prefs``, set over ``/api/me/notifications``),
read when the job ends; stored as ``{"owner": true}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from nightcrew.errors import EnqueueError
from nightcrew.notify.addresses import literal_refusal

# "untrusted" is set by the HTTP API, never by users (see user_notify).
NOTIFY_KEYS = frozenset({"email", "webhook", "in_app", "on", "untrusted"})
EVENTS = ("completed", "failed", "cancelled")
DEFAULT_EVENTS = ("completed", "failed")
# Deliberately loose: one @, no spaces, a dot in the domain. The mail server has the last word.
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_MAX_LENGTH = 2000


def check_email(value: Any, what: str = "notify.email") -> str:
    """A plausible email address, or :class:`EnqueueError`."""
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.match(value):
        raise EnqueueError(f"{what} must be an email address, got {value!r}", field=what)
    return value


def check_webhook_url(value: Any, what: str = "notify.webhook") -> str:
    """An absolute http(s) URL with a host, or :class:`EnqueueError`."""
    if not isinstance(value, str) or len(value) > _MAX_LENGTH:
        raise EnqueueError(f"{what} must be an http(s) URL, got {value!r}", field=what)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise EnqueueError(f"{what} is not a valid URL: {value!r}", field=what) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EnqueueError(f"{what} must be an http:// or https:// URL, got {value!r}", field=what)
    return value


def host_allowed(url: str, patterns: Sequence[str]) -> bool:
    """Whether ``url``'s host matches one of ``patterns`` (the ``webhook_hosts`` setting).

    ``example.com`` allows that host only, ``.example.com`` its subdomains, ``*`` every
    host; an empty list allows none.
    """
    host = (urlsplit(url).hostname or "").lower()
    for entry in patterns:
        entry = entry.lower()
        if entry == "*" or host == entry or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False


OWNER = "owner"
OWNER_JSON = '{"owner":true}'


def check_user_webhook(
    value: Any, *, webhook_hosts: Sequence[str], allow_private: bool, what: str
) -> str:
    """A webhook URL that a user (not the code) set: an http(s) URL whose host an admin
    allowed (``webhook_hosts``; none by default) and that is not an IP literal outside the
    public internet. Delivery checks the host again when it sends, and every address the
    name resolves to. Raises :class:`EnqueueError` naming the field ``what``."""
    url = check_webhook_url(value, what)
    host = urlsplit(url).hostname or ""
    if not host_allowed(url, webhook_hosts):
        raise EnqueueError(
            f"{what}: host {host!r} is not allowed (an admin lists the hosts that "
            "webhooks set over the HTTP API may target in NIGHTCREW_WEBHOOK_HOSTS)",
            field=what,
        )
    reason = None if allow_private else literal_refusal(host)
    if reason is not None:
        raise EnqueueError(f"{what}: {reason}, not a public address", field=what)
    return url


def user_notify(notify: Any, *, webhook_hosts: Sequence[str], allow_private: bool) -> Any:
    """``notify`` as a user sent it over the HTTP API, checked and marked ``untrusted``.

    A user's webhook is checked by :func:`check_user_webhook`; the mark makes delivery
    check the host again when it sends. Raises :class:`EnqueueError` naming the field.
    """
    if not isinstance(notify, Mapping) or notify.get("webhook") is None:
        return notify
    check_user_webhook(notify["webhook"], webhook_hosts=webhook_hosts,
                       allow_private=allow_private, what="notify.webhook")  # fmt: skip
    return {**notify, "untrusted": True}


def notify_json(notify: Any) -> str | None:
    """Validate a ``notify`` argument; return its JSON (``None`` when there is nothing to send).

    Raises :class:`EnqueueError` naming the problem.
    """
    if notify is None:
        return None
    if notify == OWNER:
        return OWNER_JSON
    if not isinstance(notify, Mapping):
        raise EnqueueError(f"notify must be a dict or 'owner', got {notify!r}", field="notify")
    unknown = set(notify) - NOTIFY_KEYS
    if unknown:
        raise EnqueueError(
            f"notify: unknown keys {sorted(unknown)} (known: email, in_app, on, webhook)",
            field="notify",
        )
    clean: dict[str, Any] = {}
    if notify.get("email") is not None:
        clean["email"] = check_email(notify["email"])
    if notify.get("webhook") is not None:
        clean["webhook"] = check_webhook_url(notify["webhook"])
        if notify.get("untrusted"):
            clean["untrusted"] = True
    in_app = notify.get("in_app")
    if in_app is not None and not isinstance(in_app, bool):
        raise EnqueueError(
            f"notify.in_app must be true or false, got {in_app!r}", field="notify.in_app"
        )
    if in_app:
        clean["in_app"] = True
    on = notify.get("on")
    if on is not None:
        if isinstance(on, str) or not isinstance(on, Sequence) or not on:
            raise EnqueueError(
                f"notify.on must be a non-empty list of {list(EVENTS)}, got {on!r}",
                field="notify.on",
            )
        bad = [event for event in on if event not in EVENTS]
        if bad:
            raise EnqueueError(
                f"notify.on: unknown events {bad} (known: {list(EVENTS)})", field="notify.on"
            )
        clean["on"] = sorted(set(on), key=EVENTS.index)
    if not ({"email", "webhook", "in_app"} & clean.keys()):
        return None  # no channel: nothing would be sent, so keep the trigger's fast path
    return json.dumps(clean, separators=(",", ":"))
