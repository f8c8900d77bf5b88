"""The HTTP API: ``create_app(app)`` returns a FastAPI (ASGI) application.

See docs/http.md for the routes, authentication and the row-level security design.
"""

from nightcrew.http.app_factory import create_app, serve
from nightcrew.http.errors import ApiError
from nightcrew.http.session import Principal, Session, acting, known_principal

# ApiError, Principal, Session and acting are public so that applications' own routers
# (App.add_router) answer errors in nightcrew's shape and authenticate with its API keys:
# ``async with acting(app, key) as session: session.principal`` (401 on a bad key), then run
# their queries on ``session.conn``: one transaction acting as the key's user (role
# nightcrew_api, row-level security applies), the only connection the request needs.
# ``known_principal`` says beforehand who a key this process has seen accepted acts for, so
# a route may send its first statement with the key check (``acting(..., first=...)``).
__all__ = ["ApiError", "Principal", "Session", "acting", "create_app", "known_principal", "serve"]
