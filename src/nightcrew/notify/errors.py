"""How a delivery attempt can fail."""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery attempt failed and is worth retrying (the notify job retries it)."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class PermanentDeliveryError(DeliveryError):
    """A delivery that can never succeed as configured (not retried)."""
