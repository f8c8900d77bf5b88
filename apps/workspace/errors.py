"""Errors of the workspace domain; the API turns them into 404/409/422 answers."""

from __future__ import annotations


class WorkspaceError(Exception):
    """A request the workspace cannot satisfy (its message names the problem)."""

    status = 422

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(WorkspaceError):
    """A document or sheet that does not exist or belongs to another user (the same)."""

    status = 404


class Invalid(WorkspaceError):
    """Bad input: a formula that does not parse, a cell reference, a Yjs update."""

    status = 422
