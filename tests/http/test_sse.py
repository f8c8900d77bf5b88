"""Live progress over Server-Sent Events, pushed from LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from tests.http.conftest import Server
from tests.support import await_until, wait_until


async def sse(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Parse an event stream: dicts with id/event/data (JSON), or {"comment": text}."""
    fields: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if not line:
            if fields:
                if "data" in fields:
                    fields["data"] = json.loads(fields["data"])
                yield fields
                fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def next_job(stream: AsyncIterator[dict[str, Any]], seen: list[str]) -> dict[str, Any]:
    """The next job event (comments are noted in ``seen``)."""
    while True:
        item = await asyncio.wait_for(anext(stream), 10)
        if "comment" in item:
            seen.append(item["comment"])
        elif item.get("event") == "job":
            return item


async def test_stream_shows_a_job_go_from_0_to_100_with_stages(srv: Server) -> None:
    srv.gates.queue = asyncio.Queue()
    worker = srv.app.worker(queues=["http"])
    running = None
    async with srv.aclient("alice") as client:
        job = (await client.post("/api/jobs", json={"type": "demo.steps"})).json()
        async with client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = sse(response)
            comments: list[str] = []
            first = await next_job(stream, comments)
            assert first["data"]["status"] == "pending" and first["data"]["progress"] == 0
            assert first["data"] == job | {"updated_at": first["data"]["updated_at"]}
            running = asyncio.create_task(worker.run())
            states, event_ids = [first["data"]], [int(first["id"])]
            while states[-1]["status"] != "completed":
                event = await next_job(stream, comments)
                states.append(event["data"])
                event_ids.append(int(event["id"]))
                if event["data"]["status"] == "processing":
                    if event["data"]["progress"] == 0:  # idle a moment: heartbeats flow
                        await asyncio.sleep(1.2)
                    srv.gates.queue.put_nowait("go")
            rest = [item async for item in stream]  # the stream ends after a terminal state
    worker.stop()
    await running
    await srv.app.aclose()
    progress = [(s["status"], s["progress"], s["stage"]) for s in states]
    assert progress == [
        ("pending", 0, None),
        ("processing", 0, None),
        ("processing", 25, "download"),
        ("processing", 50, "parse"),
        ("processing", 75, "write"),
        ("completed", 100, "write"),
    ]
    assert states[-1]["result"] == "done" and states[3]["metrics"] == {"step": "parse"}
    assert "heartbeat" in comments and rest == []
    assert event_ids == sorted(set(event_ids))  # ids only grow: Last-Event-ID can resume


async def test_last_event_id_resumes_with_the_current_state(srv: Server) -> None:
    async with srv.aclient("alice") as client:
        job = (await client.post("/api/jobs", json={"type": "demo.echo"})).json()
        async with client.stream("GET", f"/api/jobs/{job['id']}/events") as response:
            first = await next_job(sse(response), [])
        # Same state as last seen: nothing re-sent, the stream just waits (heartbeats).
        headers = {"Last-Event-ID": first["id"]}
        async with client.stream("GET", f"/api/jobs/{job['id']}/events", headers=headers) as r:
            comments: list[str] = []
            stream = sse(r)
            while "heartbeat" not in comments:
                item = await asyncio.wait_for(anext(stream), 10)
                assert "event" not in item, item
                comments.extend([item["comment"]] if "comment" in item else [])
            await client.post(f"/api/jobs/{job['id']}/cancel")  # pushed to this open stream
            cancelled = await next_job(stream, comments)
            assert cancelled["data"]["status"] == "cancelled"
            assert [item async for item in stream] == []
        # Missed the change while disconnected: resuming sends the current state, then ends.
        async with client.stream("GET", f"/api/jobs/{job['id']}/events", headers=headers) as r:
            items = [item async for item in sse(r) if "event" in item]
        assert [i["data"]["status"] for i in items] == ["cancelled"]
        assert int(items[0]["id"]) > int(first["id"])
        # Resuming from the terminal event itself: nothing left to send.
        headers = {"Last-Event-ID": items[0]["id"]}
        async with client.stream("GET", f"/api/jobs/{job['id']}/events", headers=headers) as r:
            assert [item async for item in sse(r) if "event" in item] == []


async def test_one_listen_connection_serves_every_stream(srv: Server) -> None:
    hub = srv.asgi.state.event_hub
    async with srv.aclient("alice") as alice, srv.aclient("bob") as bob:
        jobs = [(await alice.post("/api/jobs", json={"type": "demo.echo"})).json()
                for _ in range(3)]  # fmt: skip
        other = (await bob.post("/api/jobs", json={"type": "demo.echo"})).json()
        streams = [alice.stream("GET", f"/api/jobs/{j['id']}/events") for j in jobs]
        responses = [await s.__aenter__() for s in streams]
        parsers = [sse(response) for response in responses]
        for parser in parsers:
            await next_job(parser, [])
        await await_until(lambda: _true(hub.subscriptions == 3), 10, "three subscriptions")
        listeners = srv.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND query = 'LISTEN nightcrew_events'")  # fmt: skip
        assert listeners == [(1,)]
        # Bob's change wakes none of Alice's streams; Alice's streams all end on cancel.
        await bob.post(f"/api/jobs/{other['id']}/cancel")
        cancel = await alice.post("/api/jobs/bulk", json={"action": "cancel", "filter": {}})
        assert cancel.json()["count"] == 3
        for parser in parsers:
            rest = [i async for i in parser if "event" in i]
            assert [i["data"]["status"] for i in rest] == ["cancelled"]
        for stream in streams:
            await stream.__aexit__(None, None, None)
    wait_until(lambda: hub.subscriptions == 0, 10, "streams to unsubscribe")


async def _true(value: bool) -> bool:
    return value
