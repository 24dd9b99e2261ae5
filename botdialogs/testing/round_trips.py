"""A counting TCP proxy for PostgreSQL (and Redis): round trips and statements at the server.

Put :class:`RoundTripProxy` between a client and the server and point the client at
``proxy.port``. It forwards bytes unchanged and counts, per connection and in total:

- **round trips**: client->server flights, where a new flight starts when the client sends
  after the server has answered (so a pipeline of many statements sent at once is one, and
  so is lock or transaction control that the client waits for);
- **statements**: PostgreSQL frontend ``Query`` ('Q') and ``Execute`` ('E') messages, or
  Redis commands (RESP arrays) with ``protocol="redis"``;
- **connections** opened through the proxy.

The count is what the server sees, whichever library or layer sent it: statements our code
runs, and also connection setup, ``BEGIN``/``COMMIT`` and advisory locks.

Usage (tests and ``bench/``)::

    async with RoundTripProxy("127.0.0.1", 5432) as proxy:
        ...  # connect clients to 127.0.0.1:proxy.port
        before = proxy.totals()
        ...
        spent = proxy.totals() - before   # Counts(round_trips=…, statements=…, connections=…)
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

PROTOCOLS = ("postgres", "redis")
# Untyped PostgreSQL packets that precede (or replace) the StartupMessage.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_STATEMENT_TYPES = {ord("Q"), ord("E")}
_CHUNK = 65536


@dataclass(frozen=True)
class Counts:
    """Round trips, statements and connections opened: a total, or a difference of two."""

    round_trips: int = 0
    statements: int = 0
    connections: int = 0

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.round_trips - other.round_trips,
            self.statements - other.statements,
            self.connections - other.connections,
        )

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.round_trips + other.round_trips,
            self.statements + other.statements,
            self.connections + other.connections,
        )


@dataclass
class ConnectionStats:
    """What one proxied connection did so far."""

    number: int
    round_trips: int = 0
    statements: int = 0
    closed: bool = False
    # True until the client sends its first flight, then after every server answer.
    server_answered: bool = field(default=True, repr=False)


class _PostgresCounter:
    """Counts Query/Execute messages in the frontend stream (split across reads or not)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.startup = True  # untyped packets until the StartupMessage went by
        self.blind = False  # TLS or GSS encryption: nothing more can be parsed
        self.awaiting_encryption_answer = False

    def feed(self, data: bytes) -> int:
        if self.blind:
            return 0
        self.buffer += data
        found = 0
        while True:
            if self.startup:
                if len(self.buffer) < 8:
                    return found
                (length,) = struct.unpack_from("!i", self.buffer, 0)
                if len(self.buffer) < length:
                    return found
                (code,) = struct.unpack_from("!i", self.buffer, 4)
                del self.buffer[:length]
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    self.awaiting_encryption_answer = True  # next packet is untyped again
                elif code != _CANCEL_REQUEST:
                    self.startup = False
                continue
            if len(self.buffer) < 5:
                return found
            kind = self.buffer[0]
            (length,) = struct.unpack_from("!i", self.buffer, 1)
            if len(self.buffer) < 1 + length:
                return found
            if kind in _STATEMENT_TYPES:
                found += 1
            del self.buffer[: 1 + length]

    def server_sent(self, data: bytes) -> None:
        # The one-byte answer to SSLRequest/GSSENCRequest: 'S'/'G' means encryption follows.
        if self.awaiting_encryption_answer and data:
            self.awaiting_encryption_answer = False
            if data[:1] in (b"S", b"G"):
                self.blind = True


class _RedisCounter:
    """Counts commands (RESP arrays of bulk strings, or inline commands) sent to Redis."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> int:
        self.buffer += data
        found = 0
        while True:
            consumed = self._one_command()
            if consumed == 0:
                return found
            del self.buffer[:consumed]
            found += 1

    def _one_command(self) -> int:
        """Length of the first complete command in the buffer, or 0."""
        line_end = self.buffer.find(b"\r\n")
        if line_end < 0:
            return 0
        if self.buffer[:1] != b"*":
            return line_end + 2  # an inline command: one line
        position = line_end + 2
        for _ in range(int(self.buffer[1:line_end])):
            header_end = self.buffer.find(b"\r\n", position)
            if header_end < 0:
                return 0
            size = int(self.buffer[position + 1 : header_end])
            position = header_end + 2 + size + 2
            if position > len(self.buffer):
                return 0
        return position

    def server_sent(self, data: bytes) -> None:
        pass


class RoundTripProxy:
    """A TCP proxy on 127.0.0.1 that counts what crosses it (see the module docstring)."""

    def __init__(self, upstream_host: str, upstream_port: int, protocol: str = "postgres"):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.protocol = protocol
        self.host = "127.0.0.1"
        self.port = 0
        self.connections: list[ConnectionStats] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pumps: set[asyncio.Future[Any]] = set()

    async def start(self) -> RoundTripProxy:
        """Listen on a free port (``self.port``)."""
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and cut every proxied connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        # Cancel the pumps, not the connection tasks: each then closes its sockets and ends.
        for pump in list(self._pumps):
            pump.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))

    async def __aenter__(self) -> RoundTripProxy:
        return await self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def totals(self) -> Counts:
        """Everything counted so far, over all connections."""
        return Counts(
            round_trips=sum(c.round_trips for c in self.connections),
            statements=sum(c.statements for c in self.connections),
            connections=len(self.connections),
        )

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        stats = ConnectionStats(number=len(self.connections) + 1)
        self.connections.append(stats)
        try:
            await self._relay(stats, client_reader, client_writer)
        finally:
            client_writer.close()
            stats.closed = True
            self._tasks.discard(task)

    async def _relay(
        self,
        stats: ConnectionStats,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
    ) -> None:
        counter = _PostgresCounter() if self.protocol == "postgres" else _RedisCounter()
        try:
            server_reader, server_writer = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            return  # the client sees its connection closed, as with the server down

        async def upstream() -> None:
            while data := await client_reader.read(_CHUNK):
                if stats.server_answered:
                    stats.round_trips += 1
                    stats.server_answered = False
                stats.statements += counter.feed(data)
                server_writer.write(data)
                await server_writer.drain()
            server_writer.write_eof()

        async def downstream() -> None:
            while data := await server_reader.read(_CHUNK):
                counter.server_sent(data)
                stats.server_answered = True
                client_writer.write(data)
                await client_writer.drain()
            client_writer.close()  # the server hung up: so does the client's side

        pumps = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        self._pumps.update(pumps)
        try:
            # Until the server hangs up (it does after the client's Terminate) or a pump fails.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await pump
            self._pumps.difference_update(pumps)
            server_writer.close()
