"""PostgreSQL connections of botdialogs' own, for async code: one small pool per event loop.

Django's connection is per thread and its async ORM queues every coroutine behind one thread;
the update path (chat locks, the storage's unit of work) talks to PostgreSQL with psycopg's
async API instead, with the connection settings of a Django database alias.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from django.db import connections


def conninfo(using: str = "default") -> dict[str, Any]:
    """psycopg connection arguments for the Django database ``using`` (test name included)."""
    settings_dict = connections[using].settings_dict
    params: dict[str, Any] = {"dbname": settings_dict["NAME"]}
    for ours, theirs in (("USER", "user"), ("PASSWORD", "password"), ("HOST", "host")):
        if settings_dict.get(ours):
            params[theirs] = settings_dict[ours]
    if settings_dict.get("PORT"):
        params["port"] = int(settings_dict["PORT"])
    options = dict(settings_dict.get("OPTIONS") or {})
    for name in ("sslmode", "sslrootcert", "sslcert", "sslkey", "application_name"):
        if name in options:
            params[name] = options[name]
    return params


class LoopPool:
    """psycopg AsyncConnections per event loop (a connection is bound to its loop).

    At most ``max_size`` connections per loop are out at once; more callers wait for one to
    come back, so many busy chats cannot exhaust the server's connection slots.
    ``statements`` counts the statements run through :meth:`execute` (tests assert on it).
    """

    def __init__(self, using: str = "default", max_size: int = 10, autocommit: bool = True):
        self.using = using
        self.max_size = max_size
        self.autocommit = autocommit
        self.statements = 0
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def _loop_state(self) -> tuple[list[Any], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        slots = self._slots.get(loop)
        if slots is None:
            slots = self._slots[loop] = asyncio.Semaphore(self.max_size)
        return self._idle.setdefault(loop, []), slots

    async def get(self) -> psycopg.AsyncConnection[Any]:
        """An idle connection of this loop, or a new one; waits while ``max_size`` are out."""
        idle, slots = self._loop_state()
        await slots.acquire()
        try:
            while idle:
                connection = idle.pop()
                if not connection.closed and not connection.broken:
                    return connection
            return await psycopg.AsyncConnection.connect(
                **conninfo(self.using), autocommit=self.autocommit
            )
        except BaseException:
            slots.release()
            raise

    async def put(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Give back a connection taken with :meth:`get`; a broken one is closed."""
        idle, slots = self._loop_state()
        try:
            reusable = (
                not connection.closed
                and not connection.broken
                and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            )
            if reusable:
                idle.append(connection)
            else:
                await connection.close()
        finally:
            slots.release()

    async def drop(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Close a connection taken with :meth:`get` instead of giving it back."""
        _idle, slots = self._loop_state()
        try:
            await connection.close()
        finally:
            slots.release()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for the block; closed instead of reused if the block fails."""
        connection = await self.get()
        try:
            yield connection
        except BaseException:
            await self.drop(connection)
            raise
        await self.put(connection)

    async def execute(
        self, connection: psycopg.AsyncConnection[Any], sql: Any, params: Any = None
    ) -> psycopg.AsyncCursor[Any]:
        """Run one statement, counted."""
        self.statements += 1
        return await connection.execute(sql, params)

    def discard(self) -> None:
        """Close every idle connection of every loop, from sync code (loops may be gone)."""
        for idle in list(self._idle.values()):
            for connection in idle:
                connection.pgconn.finish()
        self._idle.clear()
        self._slots.clear()

    async def close(self) -> None:
        """Close the idle connections of the running loop (call before the loop ends)."""
        for connection in self._idle.pop(asyncio.get_running_loop(), []):
            await connection.close()
