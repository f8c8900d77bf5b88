"""``POST /api/jobs`` answered before FastAPI's routing, when it goes in one round trip.

FastAPI spends more CPU on an enqueue than nightcrew does: its exception and exit-stack
middleware, the route table, the content-type parse, the dependency solver and the body's
validation come to about half of the web process's CPU per enqueue. :class:`DirectEnqueue`
sits in front of them and answers the common request itself: a JSON body that validates as
:class:`~nightcrew.http.models.EnqueueRequest` and can be written in one round trip
(:func:`~nightcrew.http.routes_jobs.one_round_trip_job`: a key this process has seen
accepted, no parents, no dedupe key). It parses and validates the body as FastAPI does
(``json.loads``, then the model), and writes through the same function as the route.

Anything else goes to FastAPI untouched, with the body replayed: another path or method,
another content type, a body that does not parse or validate, a request that must go step
by step. So every refusal is FastAPI's own, and nothing has been written when a request is
handed over. Errors once the write has begun are answered by the API's own exception
handlers, as the route's would be.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from nightcrew.http.limits import replaying
from nightcrew.http.models import EnqueueRequest
from nightcrew.http.routes_jobs import (
    api_key,
    enqueue_errors,
    one_round_trip_job,
    write_in_one_round_trip,
)

if TYPE_CHECKING:
    from nightcrew.app import App

Handler = Callable[[Request, Exception], Any]
"""An exception handler of the API: answers a :class:`Response`, or an awaitable of one."""

ENQUEUE_PATH = "/api/jobs"
JSON_TYPES = frozenset({b"application/json", b"application/json; charset=utf-8"})
"""The content types taken here (lower-cased); FastAPI takes the rest."""


class DirectEnqueue:
    """Pure ASGI middleware: the one-round-trip enqueues of ``nightcrew_app`` without the
    FastAPI machinery; every other request to ``app``. ``handlers``: the API's exception
    handlers (its ``exception_handlers``), which answer errors raised once a write began."""

    def __init__(self, app: ASGIApp, nightcrew_app: App, handlers: Mapping[Any, Handler]) -> None:
        self.app = app
        self.nightcrew_app = nightcrew_app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not is_json_enqueue(scope):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        raw = await request.body()
        try:
            body = EnqueueRequest.model_validate(json.loads(raw))
        except Exception:  # FastAPI's to refuse, in its own words
            await self.app(scope, replaying(raw, receive), send)
            return
        key = await api_key(request)
        job = one_round_trip_job(self.nightcrew_app, body, key)
        if job is None or key is None:
            await self.app(scope, replaying(raw, receive), send)
            return
        response: Response
        try:
            with enqueue_errors(body):
                response = await write_in_one_round_trip(self.nightcrew_app, key, job)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # the server error middleware's, as from a route
            answer = handler(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Handler | None:
        """The API's handler of ``exc`` (by its class's MRO, as Starlette looks it up), but
        not the catch-all of ``Exception``: that one answers outside, after logging."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None


def is_json_enqueue(scope: Scope) -> bool:
    """Whether ``scope`` is a ``POST /api/jobs`` (below any mount point) with a JSON body."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    if path != ENQUEUE_PATH:
        return False
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.lower() in JSON_TYPES
    return False
