"""Which addresses a webhook may reach: public ones only, checked after resolving the host.

A webhook URL comes from whoever enqueued the job; without this check it could make the
worker POST to its own loopback services, the private network or a cloud metadata endpoint
(server-side request forgery). Every address the host resolves to is checked, and the
connection is made to a checked address (never by resolving the name again), so a DNS
answer that changes between check and connect can't switch the target.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from nightcrew.notify.errors import DeliveryError, PermanentDeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services outside the ranges refused anyway (AWS's IPv6 endpoint is in a
# private range too; listed so the refusal says what it is).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not connect to ``address`` (``None``: a public address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for kind, refused in (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    ):
        if refused:
            return f"a {kind} address"
    if not address.is_global:  # e.g. shared address space 100.64.0.0/10, documentation
        return "not a public address"
    return None


def literal_refusal(host: str) -> str | None:
    """Why a URL's host, when it is an IP address literal, may not be a webhook target."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None  # a name: checked once resolved, at send time
    reason = refusal(address)
    return None if reason is None else f"{address} is {reason}"


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses of ``host`` to connect to, every one of them allowed.

    Raises :class:`DeliveryError` when the name does not resolve (for now) and
    :class:`PermanentDeliveryError` when any address it resolves to is refused.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DeliveryError(f"cannot resolve webhook host {host!r}: {exc}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise DeliveryError(f"webhook host {host!r} has no address")
    if not allow_private:
        for text in addresses:
            reason = refusal(ipaddress.ip_address(text.split("%", 1)[0]))
            if reason is not None:
                raise PermanentDeliveryError(
                    f"webhook host {host!r} resolves to {text}, {reason}: refused "
                    "(webhook_allow_private allows local receivers)"
                )
    return addresses
