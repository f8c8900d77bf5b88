"""One error shape for every failure: ``{"error": {"code", "message", "field"?}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("nightcrew.http")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    503: "unavailable",
}


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: ErrorBody


class ApiError(Exception):
    """Raised by routes to answer with an error status and the standard body."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _STATUS_CODES.get(status, "error")
        self.message = message
        self.field = field


def not_found(what: str = "job") -> ApiError:
    """The 404 for a missing (or someone else's: indistinguishable) resource."""
    return ApiError(404, f"{what} not found")


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A JSON response in the standard error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    # loc is ("body", "priority") or ("query", "limit"); drop the part, keep the field path.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "body"


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, exc.field, headers)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            detail = err.get("ctx", {}).get("error", "invalid JSON")
            message = f"request body is not valid JSON: {detail}"
            return error_response(400, "malformed_json", message)
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
    field = _field_name(tuple(first.get("loc", ())))
    if first.get("type") == "missing" and field == "body":
        message = "request body is required"
    else:
        message = f"{field}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(422, "validation_error", message, field)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        message = "not found"
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value PostgreSQL cannot store or compare (e.g. a NUL character in text or JSON):
    # bad input, not a server fault.
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return error_response(422, "validation_error", f"a value cannot be stored: {detail}")


async def _on_refused_by_policy(request: Request, exc: Exception) -> JSONResponse:
    # Row-level security (or a missing grant) refused what the acting user asked for: the
    # user's fault, never a 500. Routes with a more precise answer catch it themselves.
    return error_response(403, "forbidden", "not allowed for this API key")


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # The connection broke or none could be had (a restart, a failover, the pool
    # exhausted): the server is fine and a retry will likely succeed, so 503, no traceback.
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, detail)
    return error_response(503, "database_unavailable",
                          "the database is unavailable; retry in a moment",
                          headers={"Retry-After": "1"})  # fmt: skip


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(api: FastAPI) -> None:
    """Answer every error in the standard shape."""
    api.add_exception_handler(ApiError, _on_api_error)
    api.add_exception_handler(RequestValidationError, _on_validation_error)
    api.add_exception_handler(StarletteHTTPException, _on_http_error)
    api.add_exception_handler(psycopg.DataError, _on_data_error)
    api.add_exception_handler(psycopg.errors.InsufficientPrivilege, _on_refused_by_policy)
    # Also psycopg_pool.PoolTimeout, a subclass.
    api.add_exception_handler(psycopg.OperationalError, _on_database_unavailable)
    api.add_exception_handler(Exception, _on_unexpected)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": code.replace("_", " ")}
    for status, code in _STATUS_CODES.items()
    if status in (400, 401, 404, 413, 422, 503)
}
"""OpenAPI descriptions of the errors every ``/api`` route may answer."""
