"""Errors of the estimating domain; the API turns them into 403/404/409/422 answers."""

from __future__ import annotations


class EstimatingError(Exception):
    """Base class: a request the library cannot satisfy (its message names the problem)."""

    status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownCode(EstimatingError):
    """A code (item, catalogue entry, assembly) or project id that does not exist."""

    status = 404


class InvalidReference(EstimatingError):
    """A code that exists but cannot be used here (e.g. a labour code given as material)."""

    status = 422


class Forbidden(EstimatingError):
    """The acting user may see the thing but not do this with it (e.g. a viewer writing rates,
    a non-admin changing the shared catalogue)."""

    status = 403


class Conflict(EstimatingError):
    """The request collides with existing data the acting user may not change (a project id
    already taken by another team)."""

    status = 409
