"""An App's schedules: declared in code, stored in the database, steered at run time."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from nightcrew.errors import ConfigurationError
from nightcrew.scheduler import store
from nightcrew.scheduler.schedules import Schedule, make_schedule
from nightcrew.scheduler.store import ScheduleInfo

if TYPE_CHECKING:
    from nightcrew.app import App


class ScheduleBook:
    """The schedules an App declares (``app.schedule(...)``) and the operations on the
    stored ones; reached through the App's ``schedule*`` methods."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.definitions: dict[str, Schedule] = {}
        self._lock = threading.Lock()

    def add(self, type: str, **options: Any) -> Schedule:
        """Declare a schedule (see :meth:`nightcrew.App.schedule`)."""
        schedule = make_schedule(type, **options)
        with self._lock:
            if schedule.name in self.definitions:
                raise ConfigurationError(
                    f"schedule {schedule.name!r} is already declared; give the second one "
                    "its own name= (several schedules may share a job type)"
                )
            self.definitions[schedule.name] = schedule
        return schedule

    def sync(self, *, mark_missing: bool = False) -> None:
        """Store the declared schedules (the built-in ones included). With ``mark_missing``
        (what a starting scheduler does) stored schedules no longer declared stop firing."""
        with self.app.pool().connection() as conn:
            store.sync_definitions(
                conn, list(self.definitions.values()), registry=self.app.registry,
                strict_types=self.app.strict_types, mark_missing=mark_missing,
            )  # fmt: skip

    def list(self) -> list[ScheduleInfo]:
        """Every stored schedule with its state."""
        with self.app.pool().connection() as conn:
            return store.list_schedules(conn)

    def get(self, name: str) -> ScheduleInfo:
        """One stored schedule (:class:`~nightcrew.scheduler.UnknownScheduleError` if none)."""
        with self.app.pool().connection() as conn:
            return store.get_schedule(conn, name)

    def set_enabled(self, name: str, enabled: bool) -> ScheduleInfo:
        """Enable or disable a stored schedule."""
        with self.app.pool().connection() as conn:
            return store.set_enabled(conn, name, enabled)

    def set_timing(
        self,
        name: str,
        *,
        cron: str | None = None,
        every: timedelta | float | None = None,
        timezone: str | None = None,
    ) -> ScheduleInfo:
        """Change when a stored schedule fires."""
        with self.app.pool().connection() as conn:
            return store.set_timing(conn, name, cron=cron, every=every, timezone=timezone)

    def run_now(self, name: str) -> UUID:
        """Enqueue a stored schedule's job now; return its id."""
        with self.app.pool().connection() as conn:
            return store.run_now(
                conn, name, registry=self.app.registry, strict_types=self.app.strict_types
            )
