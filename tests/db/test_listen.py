"""The shared LISTEN loop on a link that dies silently: a TCP proxy that stops forwarding
without closing anything (a half-open connection, as after a NAT or firewall drops its
state). The loop must notice within its check interval and listen again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from nightcrew.db.listen import listen_forever, open_listen_connection
from tests.support import await_until


class FreezableProxy:
    """Forwards TCP connections to ``target``; :meth:`freeze` silently stops forwarding on
    the connections open at the time (their sockets stay open), new ones flow normally."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self._frozen: set[int] = set()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="proxy-accept", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            ready, _, _ = select.select([self.listener], [], [], 0.05)
            if not ready:
                continue
            client, _ = self.listener.accept()
            server = socket.create_connection(self.target)
            self._links.append((client, server))
            link = len(self._links) - 1
            pump = threading.Thread(target=self._pump, args=(link, client, server), daemon=True)
            self._threads.append(pump)
            pump.start()

    def _pump(self, link: int, client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        while not self._closing.is_set():
            if link in self._frozen:  # hold the data; never close, never answer
                time.sleep(0.05)
                continue
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in ready:
                try:
                    data = sock.recv(65536)
                    if data:
                        peers[sock].sendall(data)
                        continue
                except OSError:
                    pass
                # One side closed (as after a cancel request) or failed: close the other.
                for end in (client, server):
                    with contextlib.suppress(OSError):
                        end.shutdown(socket.SHUT_RDWR)
                return

    def freeze(self) -> None:
        """Drop every byte of the open connections from now on, closing nothing."""
        self._frozen.update(range(len(self._links)))

    def close(self) -> None:
        """Stop forwarding and close every socket."""
        self._closing.set()
        for thread in self._threads:  # each wakes within 0.05 s
            thread.join(5)
        self.listener.close()
        for client, server in self._links:
            client.close()
            server.close()


@pytest.fixture
def proxy(db_url: str) -> Iterator[FreezableProxy]:
    """A proxy in front of the test server (which must be reached over TCP)."""
    params = conninfo_to_dict(db_url)
    host = str(params.get("host", ""))
    if not host or host.startswith("/"):
        pytest.skip("the test server is reached over a Unix socket, not TCP")
    forwarder = FreezableProxy(host, int(params.get("port", 5432)))
    yield forwarder
    forwarder.close()


async def test_a_silently_dropped_listen_connection_is_reopened(
    db_url: str, proxy: FreezableProxy
) -> None:
    check = 0.5
    events: list[str] = []
    notes: list[str] = []
    via_proxy = make_conninfo(db_url, host="127.0.0.1", port=proxy.port)
    loop = asyncio.create_task(
        listen_forever(via_proxy, ("nc_listen_test",), lambda _channel, payload:
                       notes.append(payload), on_listening=lambda: events.append("listening"),
                       on_lost=lambda: events.append("lost"), check_seconds=check)
    )  # fmt: skip

    async def seen(what: list[str]) -> bool:
        return events == what

    try:
        await await_until(lambda: seen(["listening"]), 10, "LISTEN")
        proxy.freeze()
        frozen_at = time.monotonic()
        await await_until(lambda: seen(["listening", "lost"]), 10, "the dead link to be noticed")
        # Silent for `check`, then a probe with as long to answer (plus scheduling slack).
        assert time.monotonic() - frozen_at < 2 * check + 1.5
        await await_until(lambda: seen(["listening", "lost", "listening"]), 10, "LISTEN again")
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute("NOTIFY nc_listen_test, 'after the outage'")

        async def delivered() -> bool:
            return "after the outage" in notes

        await await_until(delivered, 10, "the notification on the new connection")
    finally:
        loop.cancel()
        with pytest.raises(asyncio.CancelledError):
            await loop


async def test_listen_connections_enable_tcp_keepalives(db_url: str, proxy: FreezableProxy) -> None:
    conn = await open_listen_connection(db_url, check_seconds=7)
    try:
        sock = socket.socket(fileno=os.dup(conn.pgconn.socket))
        with sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 7
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 3
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == 3
    finally:
        await conn.close()
