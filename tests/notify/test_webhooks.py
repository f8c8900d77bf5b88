"""Webhook signatures, per-user secrets and which addresses a webhook may reach (no
database)."""

from __future__ import annotations

import ipaddress
import time

import pytest

from nightcrew.notify.addresses import refusal
from nightcrew.notify.webhooks import sign, user_secret, verify

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


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    refused = refusal(ipaddress.ip_address(address))
    assert refused is not None and reason in refused


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_user_secrets_differ_per_user_and_from_the_master() -> None:
    alice, bob = user_secret("master", "alice"), user_secret("master", "bob")
    assert len({alice, bob, "master"}) == 3
    assert alice == user_secret("master", "alice") != user_secret("other master", "alice")
