"""The applications shipped beside nightcrew (``apps/``), and one App hosting them all.

Each application is a package with ``install(app)``; :data:`APPLICATIONS` lists them for
:func:`install_all`, ``nightcrew_apps.app:app`` (the command line) and ``make demo``
(:mod:`nightcrew_apps.demo`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import estimating.app
import estimating.demo
import league.app
import league.demo
import prospecting.app
import prospecting.demo
import workspace.app
import workspace.demo
from nightcrew import App

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["APPLICATIONS", "AppDemo", "Application", "build_app", "install_all"]


class AppDemo(Protocol):
    """An application's part of the demo (a module with these three functions)."""

    async def prepare(self, url: str, console: Console, *, reload: bool, small: bool) -> None:
        """Load the application's demo data into the migrated database at ``url``."""

    def hints(self, base: str, user_key: str) -> list[str]:
        """What to try in the running demo at ``base``, one line each."""

    async def stop(self) -> None:
        """Stop what ``prepare`` left running, once the demo's worker has stopped."""


@dataclass(frozen=True)
class Application:
    """One application of ``apps/``: its name, its ``install(app)`` and its demo part."""

    name: str
    install: Callable[[App], None]
    demo: AppDemo | None = None


APPLICATIONS: tuple[Application, ...] = (
    Application("estimating", estimating.app.install, estimating.demo),
    Application("league", league.app.install, league.demo),
    Application("workspace", workspace.app.install, workspace.demo),
    Application("prospecting", prospecting.app.install, prospecting.demo),
)
"""Every application in ``apps/``, in installation order."""


def install_all(app: App) -> None:
    """Install every application of :data:`APPLICATIONS` on ``app``."""
    for application in APPLICATIONS:
        application.install(app)


def build_app(database_url: str | None = None, **settings: Any) -> App:
    """A new App hosting every application (arguments as for :class:`nightcrew.App`)."""
    app = App(database_url, **settings)
    install_all(app)
    return app
