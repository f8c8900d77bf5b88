"""Bulk enqueue's COPY text, without a database: a chunk encoded at once (the payloads in one
JSON array) gives exactly the rows and ids of the item-by-item encoding, and anything that
path might misjudge goes item by item."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from nightcrew import App
from nightcrew.errors import EnqueueError
from nightcrew.ids import uuid7_ints
from nightcrew.lifecycle.bulk import BulkEncoder, _hex_ids


def make_app() -> App:
    app = App("postgresql://unused", migrate_on_start=False)

    @app.job("bulk.plain", max_attempts=2, timeout=30)
    async def plain(ctx: Any, payload: Any) -> None: ...

    @app.job("bulk.other\tqueue", queue="q\\1", priority=3)
    async def other(ctx: Any, payload: Any) -> None: ...

    return app


def nested(depth: int) -> object:
    value: object = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


def unescape(text: str) -> str:
    """COPY text's escapes back to the characters (the ones bulk writes)."""
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            char = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}[next(chars)]
        out.append(char)
    return "".join(out)


TRICKY: list[dict[str, Any]] = [
    {"i": 1, "t": 1764668000.123456},
    {},
    {"s": 'tab\there, new\nline, cr\r, back\\slash, é, 𝄞, "q", \x01'},
    {"s": "\\" * 7, "k\\ey": ["\\t", "\\n", "\\u000", "u0000"]},
    {"s": ',"', "t": '",', "u": ","},
    {"s": "[{" * 200},  # many brackets in a string: quick check fails, item by item
    {"n": None, "b": True, "f": -0.0, "l": [1, 2.5, "x"], 7: "int key"},
    {"deep": nested(63)},
]


@pytest.mark.parametrize("start", range(len(TRICKY)))
def test_a_chunk_at_once_equals_item_by_item(start: int) -> None:
    registry = make_app().registry
    payloads = (TRICKY[start:] + TRICKY[:start]) * 3
    batch = [
        {"type": "bulk.other\tqueue" if i % 5 == 1 else "bulk.plain", "payload": p}
        for i, p in enumerate(payloads)
    ]
    for size in (1, 2, len(batch)):
        for chunk in (batch[i : i + size] for i in range(0, len(batch), size)):
            values = uuid7_ints(len(chunk))
            at_once = BulkEncoder(registry, strict_types=True)
            text = at_once._encode_plain(chunk, values)
            each = BulkEncoder(registry, strict_types=True)
            expected = each._encode_each(chunk, values)
            if text is None:  # only the bracket-heavy string goes item by item
                assert any(item["payload"] is TRICKY[5] for item in chunk)
                continue
            assert text == expected
            assert at_once.ids == each.ids and len(at_once.ids) == len(chunk)
            assert [u.int for u in at_once.ids] == list(values)
            assert [u.version for u in at_once.ids] == [7] * len(chunk)
            rows = text.decode().split("\n")[:-1]
            assert len(rows) == len(chunk)
            for row, item, job_id in zip(rows, chunk, at_once.ids, strict=True):
                fields = row.split("\t")
                assert fields[0] == job_id.hex and unescape(fields[2]) == item["type"]
                assert json.loads(unescape(fields[1])) == json.loads(json.dumps(item["payload"]))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"s": "nul\x00"}, "NUL"),
        ({"k\x00": 1}, "NUL"),
        ({"s": "\\u0000"}, "NUL"),  # its JSON reads as \u0000: refused, as before
        ({"v": nested(65)}, "nested deeper than 64"),
        ({"x": object()}, "not JSON-serialisable"),
        ({"f": math.nan}, "not JSON-serialisable"),
        ({"f": math.inf}, "not JSON-serialisable"),
        ({("t",): 1}, "not JSON-serialisable"),
    ],
)
def test_a_bad_payload_in_a_chunk_is_named_as_before(payload: object, message: str) -> None:
    registry = make_app().registry
    batch = [{"type": "bulk.plain", "payload": {"i": i}} for i in range(200)]
    batch[150] = {"type": "bulk.plain", "payload": payload}
    encoder = BulkEncoder(registry, strict_types=True)
    with pytest.raises(EnqueueError, match=rf"^item 150: payload .*{message}") as refused:
        list(encoder.chunks(batch))
    assert refused.value.field == "payload"


def test_a_circular_payload_is_refused() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    batch = [
        {"type": "bulk.plain", "payload": {"i": 1}},
        {"type": "bulk.plain", "payload": circular},
    ]
    with pytest.raises(EnqueueError, match=r"^item 1: payload .*not JSON-serialisable"):
        list(BulkEncoder(make_app().registry, strict_types=True).chunks(batch))


def test_mixed_chunks_keep_ids_in_input_order() -> None:
    registry = make_app().registry
    batch: list[dict[str, Any]] = [{"type": "bulk.plain", "payload": {"i": i}} for i in range(300)]
    batch[40] = {"type": "bulk.plain", "payload": {"i": 40}, "priority": 1}
    batch[41] = {"type": "bulk.plain"}
    batch[200] = {"type": "bulk.plain", "payload": {"i": 200}, "delay": 5}
    encoder = BulkEncoder(registry, strict_types=True)
    text = b"".join(encoder.chunks(batch)).decode()
    assert len(encoder.ids) == 300 and encoder.ids[200] is None
    assert len(encoder.other) == 1 and encoder.other[0][0] == 200
    rows = {row.split("\t")[0]: row for row in text.split("\n")[:-1]}
    assert len(rows) == 299
    for index, job_id in enumerate(encoder.ids):
        if job_id is not None:
            payload = json.loads(unescape(rows[job_id.hex].split("\t")[1]))
            assert payload == ({} if index == 41 else {"i": index})


@pytest.mark.parametrize("start", [0, 1, 200, 255, 256, (1 << 127) + 250, (1 << 128) - 300])
@pytest.mark.parametrize("count", [1, 6, 128, 600])
def test_hex_ids(start: int, count: int) -> None:
    values = range(start, min(start + count, 1 << 128))
    heads, tails = _hex_ids(values)
    assert [h + t for h, t in zip(heads, tails, strict=True)] == [f"{v:032x}\t" for v in values]
