"""Time-ordered job ids (UUIDv7, RFC 9562).

Ids sort by creation time, so new rows land at the right edge of the primary-key index
(cheap inserts) and the key doubles as the newest-first listing order.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_VERSION_AND_VARIANT = 0x7 << 76 | 0x2 << 62
_RANDOM_MASK = ~(0xF << 76 | 0x3 << 62) & ((1 << 80) - 1)
_CHUNK = 10 * 1024
_local = threading.local()


def _random80() -> int:
    # One urandom call per 1,024 ids: bulk enqueue creates tens of thousands at once.
    buf: bytes = getattr(_local, "buf", b"")
    pos: int = getattr(_local, "pos", 0)
    if pos + 10 > len(buf):
        buf, pos = os.urandom(_CHUNK), 0
        _local.buf = buf
    _local.pos = pos + 10
    return int.from_bytes(buf[pos : pos + 10], "big")


def uuid7() -> uuid.UUID:
    """A new UUIDv7: 48 bits of Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | (_random80() & _RANDOM_MASK) | _VERSION_AND_VARIANT
    return uuid.UUID(int=value)
