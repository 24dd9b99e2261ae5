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
    """Idle psycopg AsyncConnections kept per event loop (a connection is bound to its loop).

    ``statements`` counts the statements run through :meth:`execute` (tests assert on it).
    """

    def __init__(self, using: str = "default", max_idle: int = 20, autocommit: bool = True):
        self.using = using
        self.max_idle = max_idle
        self.autocommit = autocommit
        self.statements = 0
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[Any]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> psycopg.AsyncConnection[Any]:
        """An idle connection of this loop, or a new one."""
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        while idle:
            connection = idle.pop()
            if not connection.closed and not connection.broken:
                return connection
        return await psycopg.AsyncConnection.connect(
            **conninfo(self.using), autocommit=self.autocommit
        )

    async def put(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Return a connection; a broken one, or one past ``max_idle``, is closed."""
        idle = self._idle.setdefault(asyncio.get_running_loop(), [])
        reusable = (
            not connection.closed
            and not connection.broken
            and connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            and len(idle) < self.max_idle
        )
        if reusable:
            idle.append(connection)
        else:
            await connection.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection for the block; closed instead of reused if the block fails."""
        connection = await self.get()
        try:
            yield connection
        except BaseException:
            await connection.close()
            raise
        await self.put(connection)

    async def execute(
        self, connection: psycopg.AsyncConnection[Any], sql: str, params: Any = None
    ) -> psycopg.AsyncCursor[Any]:
        """Run one statement, counted."""
        self.statements += 1
        return await connection.execute(sql, params)

    async def close(self) -> None:
        """Close the idle connections of the running loop (call before the loop ends)."""
        for connection in self._idle.pop(asyncio.get_running_loop(), []):
            await connection.close()
