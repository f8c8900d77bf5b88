"""Errors of the estimating domain; the API turns them into 404/422 answers."""

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
