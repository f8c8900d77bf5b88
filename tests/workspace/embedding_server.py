"""A real local HTTP server speaking the OpenAI embeddings API (``POST /v1/embeddings``)
for the provider tests: deterministic letter-count vectors, the requests recorded, and
scripted failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.notify.receivers import free_port

DIMENSION = 16


def letter_vector(text: str, dimension: int = DIMENSION) -> list[float]:
    """Counts of the letters a, b, c... (one per dimension), plus one to avoid zeros."""
    lowered = text.lower()
    return [1.0 + lowered.count(chr(97 + i)) for i in range(dimension)]


@dataclass
class EmbeddingServer:
    """What the server received and how it answers next."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    dimension: int = DIMENSION


@contextmanager
def embedding_server() -> Iterator[EmbeddingServer]:
    """Serve on 127.0.0.1 until the block ends."""
    state = EmbeddingServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(
                {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            )
            if state.fail_next:
                state.fail_next -= 1
                self._answer(503, {"error": {"message": "overloaded"}})
                return
            data = [
                {
                    "object": "embedding",
                    "index": i,
                    "embedding": letter_vector(text, state.dimension),
                }
                for i, text in enumerate(body["input"])
            ]
            data.reverse()  # the index, not the order, says which input a vector is for
            self._answer(200, {"object": "list", "data": data, "model": body["model"]})

        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{port}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
