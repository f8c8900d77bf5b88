"""Each user's notification preferences: an email address, a webhook URL, and per event
(``completed``, ``failed``) the channels (``email``, ``in_app``, ``webhook``) that notify
them of their own jobs enqueued with ``notify="owner"``.

Users set them themselves (``PUT /api/me/notifications``, the dashboard's
``/me/notifications``), so a webhook URL goes through the same checks as a webhook a user
sets on a job over the HTTP API (:func:`~nightcrew.notify.spec.check_user_webhook`), and
deliveries to it are marked untrusted (its host is checked again when it is sent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nightcrew.config import Settings
from nightcrew.errors import EnqueueError
from nightcrew.notify.spec import check_email, check_user_webhook

PREF_EVENTS = ("completed", "failed")
PREF_CHANNELS = ("email", "in_app", "webhook")


class PrefsError(ValueError):
    """Preferences that cannot be stored; ``field`` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class NotificationPrefs:
    """One user's preferences (empty channel lists: nothing is sent)."""

    email: str | None = None
    webhook: str | None = None
    channels: dict[str, list[str]] = field(
        default_factory=lambda: {event: [] for event in PREF_EVENTS}
    )

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | None) -> NotificationPrefs:
        """From a ``notification_prefs`` row (``None``: the defaults)."""
        if row is None:
            return cls()
        channels = {"completed": list(row["on_completed"]), "failed": list(row["on_failed"])}
        return cls(row["email"], row["webhook"], channels)

    def params(self, user_id: str) -> dict[str, Any]:
        """Parameters of the ``notify_prefs_upsert`` query."""
        return {"user_id": user_id, "email": self.email, "webhook": self.webhook,
                "on_completed": self.channels["completed"],
                "on_failed": self.channels["failed"]}  # fmt: skip

    def targets(self, event: str, user_id: str) -> list[tuple[str, str]]:
        """``(channel, target)`` pairs that notify ``user_id`` of ``event``."""
        where = {"email": self.email or "", "webhook": self.webhook or "", "in_app": user_id}
        return [(channel, where[channel]) for channel in self.channels.get(event, [])
                if where[channel]]  # fmt: skip


def clean_prefs(
    email: Any, webhook: Any, channels: Mapping[str, Sequence[str]], settings: Settings
) -> NotificationPrefs:
    """Checked preferences, or :class:`PrefsError` naming the field: a plausible email, a
    webhook URL an admin allows (``webhook_hosts``), known events and channels, and an
    address for every channel chosen."""
    unknown = sorted(set(channels) - set(PREF_EVENTS))
    if unknown:
        raise PrefsError("channels", f"channels: unknown events {unknown} (known: completed, "
                         "failed)")  # fmt: skip
    clean: dict[str, list[str]] = {}
    for event in PREF_EVENTS:
        chosen = list(channels.get(event) or [])
        bad = [c for c in chosen if c not in PREF_CHANNELS]
        if bad:
            raise PrefsError(f"channels.{event}", f"channels.{event}: unknown channels {bad} "
                             f"(known: {', '.join(PREF_CHANNELS)})")  # fmt: skip
        clean[event] = sorted(set(chosen), key=PREF_CHANNELS.index)
    email = email or None
    webhook = webhook or None
    try:
        if email is not None:
            email = check_email(email, "email")
        if webhook is not None:
            webhook = check_user_webhook(webhook, webhook_hosts=settings.webhook_hosts,
                                         allow_private=settings.webhook_allow_private,
                                         what="webhook")  # fmt: skip
    except EnqueueError as exc:
        raise PrefsError(exc.field or "body", str(exc)) from None
    for event, chosen in clean.items():
        for channel, value in (("email", email), ("webhook", webhook)):
            if channel in chosen and value is None:
                raise PrefsError(channel, f"{channel}: give an address to be notified by "
                                 f"{channel} of {event} jobs")  # fmt: skip
    return NotificationPrefs(email, webhook, clean)
