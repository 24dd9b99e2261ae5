"""PostgreSQL connections of botdialogs' own, for async code: a psycopg-pool per event loop.

Django's connection is per thread and its async ORM queues every coroutine behind one thread;
the update path (the storage's unit of work) talks to PostgreSQL with psycopg's async API
instead, through :class:`psycopg_pool.AsyncConnectionPool`. A pool's connections and its
worker tasks belong to the loop that opened it, so there is one pool per event loop
(:class:`LoopPools`), closed with the loop's other resources.

The connection arguments are Django's own (``get_connection_params()``: ``service``,
``passfile``, ``target_session_attrs``, ``keepalives*``, SSL and every other OPTIONS key
reach psycopg), with a client-side binding cursor and no prepared statements, so they work
through PgBouncer in transaction pooling mode. A pooled connection that the server dropped
(restart, failover) is found on its next use, before anything was done with it, and
replaced.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from typing import Any

import psycopg
from django.db import connections
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from botdialogs.storage.pool_tasks import IN_POOL

logger = logging.getLogger("botdialogs.storage")

Connection = psycopg.AsyncConnection[dict[str, Any]]

#: Django connection arguments that serve Django's own cursors: its cursor class, and its
#: adapters (they load jsonb as text, for JSONField to decode; our rows want the values).
DJANGO_ONLY = ("cursor_factory", "context", "pool", "server_side_binding", "assume_role")
#: The start of our pools' names (psycopg-pool names their scheduler and worker tasks after).
POOL_NAME = "botdialogs-pool"
#: Seconds psycopg-pool keeps retrying one connect with backoff (its default is 5 minutes).
RECONNECT_TIMEOUT = 5.0
#: Seconds a caller waits for a pooled connection (psycopg-pool's default is 30).
WAIT_TIMEOUT = 10.0


def connection_params(using: str = "default") -> dict[str, Any]:
    """psycopg connection arguments for the Django database ``using`` (test name included).

    Django's ``get_connection_params()`` less what serves Django's cursors: every OPTIONS
    key the site set reaches psycopg as Django's connections get it. (Django's
    ``assume_role`` is a ``SET ROLE`` its cursor runs; it is not applied here.)
    """
    params = dict(connections[using].get_connection_params())
    for name in DJANGO_ONLY:
        params.pop(name, None)
    # No server-side prepared statements: PgBouncer's transaction pooling breaks them.
    params["prepare_threshold"] = None
    return params


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.cancelled() or task.exception() is not None


class LoopPools:
    """One :class:`~psycopg_pool.AsyncConnectionPool` per event loop, opened on first use.

    At most ``max_size`` connections per loop are out at once; more callers wait for one to
    come back, so many busy chats cannot exhaust the server's connection slots.
    """

    def __init__(self, using: str = "default", max_size: int = 10) -> None:
        self.using = using
        self.max_size = max_size
        # Per loop, the task that opens its pool (and returns it): callers that come while it
        # is opening wait for it instead of getting a pool that is not open yet.
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool[Connection]]
        ] = weakref.WeakKeyDictionary()
        self._closing: set[asyncio.Task[None]] = set()

    async def pool(self) -> AsyncConnectionPool[Connection]:
        """The running loop's pool."""
        loop = asyncio.get_running_loop()
        opening = self._pools.get(loop)
        if opening is None or (opening.done() and _failed(opening)):
            # The pool's tasks are the loop's, not this caller's: they start in a context of
            # their own, without the caller's variables (its update, its bot scope).
            context = contextvars.Context()
            context.run(IN_POOL.set, True)
            opening = loop.create_task(self._open(connection_params(self.using)), context=context)
            self._pools[loop] = opening
        # Shielded: a caller cancelled while the pool opens does not cancel it for the others.
        return await asyncio.shield(opening)

    async def _open(self, params: dict[str, Any]) -> AsyncConnectionPool[Connection]:
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            kwargs={
                **params,
                "autocommit": True,
                # Values bound on the client: one simple-query message per round trip.
                "cursor_factory": psycopg.AsyncClientCursor,
                "row_factory": dict_row,
            },
            min_size=0,  # short-lived loops (a Celery task's) open what they use only
            max_size=self.max_size,
            num_workers=1,
            # psycopg-pool retries a failed connect with doubling delays until it gives up: a
            # short limit bounds that delay, so the first update after an outage finds the
            # server again within seconds (each getconn then starts a fresh attempt).
            reconnect_timeout=RECONNECT_TIMEOUT,
            # A caller waits this long for a connection, then fails (a 5xx: Telegram retries)
            # well before Telegram's or a proxy's own request timeout.
            timeout=WAIT_TIMEOUT,
            open=False,
            name=f"{POOL_NAME}-{self.using}",
        )
        await pool.open()
        return pool

    async def run(self, query: str, params: Any = None) -> tuple[Connection, Any]:
        """Execute ``query`` (one query string, one round trip) on a connection of the pool.

        Returns the connection, which the caller gives back with :meth:`put` or :meth:`drop`,
        and the cursor holding the results. A pooled connection the server dropped fails here;
        the pool checks its idle ones and the query goes out once more. Safe because callers
        send either a transaction that has not committed yet (round trip 1) or idempotent
        upserts.
        """
        pool = await self.pool()
        for attempt in (1, 2):
            connection = await pool.getconn()
            cursor = connection.cursor()
            try:
                await cursor.execute(query, params)
            except psycopg.OperationalError:
                await self.drop(connection)
                if attempt == 2:
                    raise
                logger.warning("A pooled PostgreSQL connection was broken: reconnecting")
                await pool.check()  # the others of this loop are likely stale too
                continue
            except BaseException:
                await self.drop(connection)
                raise
            return connection, cursor
        raise AssertionError("unreachable")  # pragma: no cover

    async def put(self, connection: Connection) -> None:
        """Give back a connection; one that is broken or inside a transaction is not reused."""
        pool = await self.pool()
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await connection.close()
        await pool.putconn(connection)

    async def drop(self, connection: Connection) -> None:
        """Close a connection taken from the pool instead of giving it back."""
        await connection.close()
        await (await self.pool()).putconn(connection)

    def discard(self) -> None:
        """Forget every loop's pool, from sync code (settings changed; loops may be gone).

        A pool whose loop still runs is closed there; the others go with their loops.
        """
        pools = list(self._pools.items())
        self._pools = weakref.WeakKeyDictionary()
        for loop, opening in pools:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._close_on_loop, opening)

    def _close_on_loop(self, opening: asyncio.Task[AsyncConnectionPool[Connection]]) -> None:
        task = asyncio.get_running_loop().create_task(self._close(opening))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        """Close the running loop's pool (call before the loop ends)."""
        opening = self._pools.pop(asyncio.get_running_loop(), None)
        if opening is not None:
            await self._close(opening)

    @staticmethod
    async def _close(opening: asyncio.Task[AsyncConnectionPool[Connection]]) -> None:
        await asyncio.wait([opening])
        if _failed(opening):
            return  # it never opened: nothing to close (its callers got the error)
        await opening.result().close()
