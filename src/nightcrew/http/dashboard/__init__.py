"""The dashboard: server-rendered pages at ``/`` to watch and steer jobs (see docs/dashboard.md).

Applications add their own pages with :meth:`nightcrew.App.add_dashboard_page`; their
handlers use :func:`dashboard_session` (the logged-in user's transaction) and :func:`render`,
and redirect with :func:`flash_url` to show a message on the next page.
"""

from nightcrew.http.dashboard.auth import check_csrf, dashboard_session, flash_url, read_form
from nightcrew.http.dashboard.routes import build_dashboard_router
from nightcrew.http.dashboard.views import progress_label, render

__all__ = [
    "build_dashboard_router",
    "check_csrf",
    "dashboard_session",
    "flash_url",
    "progress_label",
    "read_form",
    "render",
]
