"""PostgreSQL connections of botdialogs' own, for async code: one small pool per event loop.

Django's connection is per thread and its async ORM queues every coroutine behind one thread;
the update path (the storage's unit of work) talks to PostgreSQL with psycopg's async API
instead, with the connection settings of a Django database alias.

Connections bind values on the client and never prepare statements, so they work through
PgBouncer in transaction pooling mode. A pooled connection that the server dropped (restart,
failover) is found on its next use, before anything was done with it, and replaced.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from typing import Any

import psycopg
from django.db import connections
from psycopg.rows import dict_row

logger = logging.getLogger("botdialogs.storage")


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
    for name in (
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "application_name",
        "connect_timeout",
        "options",
    ):
        if name in options:
            params[name] = options[name]
    return params


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock id for a lock name."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"botdialogs").digest()
    return int.from_bytes(digest, "big", signed=True)


def scope_lock_key(scope: tuple[int, int, int, str]) -> int:
    """The advisory lock id of a chat: (bot id, chat id, thread id, business connection id)."""
    bot_id, chat_id, thread_id, business_connection_id = scope
    return lock_key(f"{bot_id}:{chat_id}:{thread_id or 0}:{business_connection_id or ''}")


class LoopPool:
    """psycopg AsyncConnections per event loop (a connection is bound to its loop).

    At most ``max_size`` connections per loop are out at once; more callers wait for one to
    come back, so many busy chats cannot exhaust the server's connection slots.
    """

    def __init__(self, using: str = "default", max_size: int = 10) -> None:
        self.using = using
        self.max_size = max_size
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

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(
            **conninfo(self.using),
            autocommit=True,
            # No server-side prepared statements: PgBouncer's transaction pooling breaks them.
            prepare_threshold=None,
            cursor_factory=psycopg.AsyncClientCursor,
        )

    async def get(self) -> tuple[psycopg.AsyncConnection[Any], bool]:
        """A connection of this loop and whether it is new; waits while ``max_size`` are out."""
        idle, slots = self._loop_state()
        await slots.acquire()
        try:
            while idle:
                connection = idle.pop()
                if not connection.closed and not connection.broken:
                    return connection, False
            return await self._connect(), True
        except BaseException:
            slots.release()
            raise

    async def run(
        self, query: str, params: Any = None
    ) -> tuple[psycopg.AsyncConnection[Any], psycopg.AsyncClientCursor[Any]]:
        """Execute ``query`` (one query string, one round trip) on a connection of the pool.

        Returns the connection, which the caller gives back with :meth:`put` or :meth:`drop`,
        and the cursor holding the results. A pooled connection the server dropped fails here;
        it and the other idle ones are discarded and the query goes out once more on a new
        connection. Safe because callers send either a transaction that has not committed
        yet (round trip 1) or idempotent upserts.
        """
        connection, new = await self.get()
        while True:
            cursor = psycopg.AsyncClientCursor(connection, row_factory=dict_row)
            try:
                await cursor.execute(query, params)
            except psycopg.OperationalError:
                await self.drop(connection)
                if new:
                    raise
                logger.warning("A pooled PostgreSQL connection was broken: reconnecting")
                self._discard_loop()
                connection, new = await self.get()
                continue
            except BaseException:
                await self.drop(connection)
                raise
            return connection, cursor

    async def put(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Give back a connection; one that is broken or inside a transaction is closed."""
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

    def _discard_loop(self) -> None:
        # After one stale connection the others of this loop are likely stale too.
        for connection in self._idle.pop(asyncio.get_running_loop(), []):
            connection.pgconn.finish()

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
