"""A provider-like HTTP receiver: it notes when each call arrives, as a paid provider that
counts calls in a sliding window would, and answers 200."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ProviderReceiver:
    """Arrivals (epoch seconds, this host's clock) and the body of every POST it got."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._calls: list[tuple[float, str]] = []
        self._lock = threading.Lock()

    def record(self, arrived: float, body: str) -> None:
        """Note one call (called by the server's threads)."""
        with self._lock:
            self._calls.append((arrived, body))

    def calls(self) -> list[tuple[float, str]]:
        """Every call so far: (arrival, body), in arrival order."""
        with self._lock:
            return sorted(self._calls)


@contextmanager
def provider_receiver() -> Iterator[ProviderReceiver]:
    """Serve a :class:`ProviderReceiver` on a free local port until the block exits."""
    receiver: ProviderReceiver | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # The clock is read as soon as the request line and headers are parsed: the
            # call has arrived, whatever the reply costs.
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            assert receiver is not None
            receiver.record(arrived, body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # quiet: the test reports what matters

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver = ProviderReceiver(f"http://127.0.0.1:{server.server_address[1]}/call")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
