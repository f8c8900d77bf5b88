"""With the database unreachable, requests answer 503 + Retry-After quickly instead of
hanging for the pool's 30 s default and answering a generic 500."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from nightcrew import App, JobContext
from nightcrew.http import create_app
from tests.http.conftest import free_port
from tests.support import wait_until


@pytest.fixture
def down_url() -> Iterator[str]:
    """The URL of a server where nothing listens (the port is held, never listened on)."""
    with socket.socket() as held:  # bound but not listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        yield f"postgresql://postgres@127.0.0.1:{port}/nightcrew?connect_timeout=2"


@pytest.fixture
def down_server(down_url: str) -> Iterator[str]:
    """uvicorn serving an App whose database is unreachable."""
    app = App(down_url, migrate_on_start=False)

    @app.job("demo.echo")
    async def echo(ctx: JobContext, payload: object) -> object:
        return payload

    port = free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="critical",
                            lifespan="on", timeout_graceful_shutdown=2)  # fmt: skip
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn-down", daemon=True)
    thread.start()
    wait_until(lambda: uv.started, 15, "uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "uvicorn did not stop"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/api/jobs", {"type": "demo.echo", "payload": {}}), ("GET", "/api/jobs", None)],
)
def test_requests_answer_503_with_retry_after_within_2s(
    down_server: str, method: str, path: str, body: object
) -> None:
    headers = {"Authorization": "Bearer some-key"}
    with httpx.Client(base_url=down_server, headers=headers, timeout=60) as client:
        started = time.monotonic()
        response = client.request(method, path, json=body)
        took = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert took < 2.5, f"took {took:.1f}s"
    assert int(response.headers["Retry-After"]) > 0
    error = response.json()["error"]
    assert error == {
        "code": "database_unavailable",
        "message": "the database is unavailable; retry in a moment",
    }
