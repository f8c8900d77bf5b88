"""Cron and interval schedules: declared in code, stored in ``nightcrew.schedules``, fired
exactly once per tick by one leader among all running schedulers, with built-in
maintenance (rescue, pruning). See docs/scheduling.md."""

from nightcrew.scheduler.book import ScheduleBook
from nightcrew.scheduler.loop import Scheduler, TickResult
from nightcrew.scheduler.schedules import Schedule
from nightcrew.scheduler.store import ScheduleInfo, UnknownScheduleError

__all__ = [
    "Schedule",
    "ScheduleBook",
    "ScheduleInfo",
    "Scheduler",
    "TickResult",
    "UnknownScheduleError",
]
