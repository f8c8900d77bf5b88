"""The HTTP API: ``create_app(app)`` returns a FastAPI (ASGI) application.

See docs/http.md for the routes, authentication and the row-level security design.
"""

from nightcrew.http.app_factory import create_app, serve
from nightcrew.http.errors import ApiError
from nightcrew.http.session import Principal, acting

# ApiError, Principal and acting are public so that applications' own routers
# (App.add_router) answer errors in nightcrew's shape and authenticate with its API keys:
# ``async with acting(app, key) as session: session.principal`` (401 on a bad key).
__all__ = ["ApiError", "Principal", "acting", "create_app", "serve"]
