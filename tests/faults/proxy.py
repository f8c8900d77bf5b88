"""A TCP proxy in front of PostgreSQL that a test can cut: the network between a worker and
its database fails, while the test itself still reaches the database directly. The database
may listen on TCP or, like the embedded server, on a Unix socket."""

from __future__ import annotations

import asyncio
import contextlib
import os

from psycopg.conninfo import conninfo_to_dict, make_conninfo


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to the database of ``url``; :meth:`cut` drops every
    connection and refuses new ones until :meth:`restore`."""

    def __init__(self, url: str) -> None:
        params = conninfo_to_dict(url)
        self._target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
        self._url = url
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The same database, reached through the proxy."""
        return make_conninfo(self._url, host="127.0.0.1", port=str(self.port))

    async def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a cut)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Drop every proxied connection and refuse new ones."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        """Accept connections again."""
        await self.start()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            host, port = self._target
            if host.startswith("/"):  # a socket directory (the embedded server): its socket
                path = os.path.join(host, f".s.PGSQL.{port}")
                server_r, server_w = await asyncio.open_unix_connection(path)
            else:
                server_r, server_w = await asyncio.open_connection(host, port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(
            _pipe(client_r, server_w), _pipe(server_r, client_w), return_exceptions=True
        )
        for writer in (client_w, server_w):
            self._writers.discard(writer)
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()
