"""Webhook signatures and target addresses, without a database."""

from __future__ import annotations

import time

import pytest

from nightcrew.notify.webhooks import sign, verify

SECRET = "k"


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("99999999999999999999", "sha256=00"),
        ("9" * 400, "sha256=00"),  # too large for a float
        ("9" * 5000, "sha256=00"),  # beyond int()'s digit limit
        ("abc", "sha256=00"),
        ("１２３", "sha256=00"),  # full-width digits: isdigit() but not ASCII
        ("-5", "sha256=00"),
        ("", "sha256=00"),
        (None, "sha256=00"),
        ("NOW", "sha256=é"),  # non-ASCII signature: compare_digest refuses such str
        ("NOW", None),
    ],
)
def test_verify_returns_false_on_absurd_input_instead_of_raising(
    timestamp: str | None, signature: str | None
) -> None:
    now = int(time.time())
    ts = str(now) if timestamp == "NOW" else timestamp
    assert verify(SECRET, b"{}", ts, signature, now=now) is False


def test_verify_still_accepts_a_good_signature() -> None:
    now = int(time.time())
    assert verify(SECRET, b"{}", str(now), sign(SECRET, now, b"{}"), now=now)
