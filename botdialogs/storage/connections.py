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
from psycopg.pq import ExecStatus
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from botdialogs.storage.pool_tasks import IN_POOL

logger = logging.getLogger("botdialogs.storage")

Connection = psycopg.AsyncConnection[dict[str, Any]]
#: One SQL statement and its parameters (``%s`` placeholders).
Statement = tuple[str, list[Any]]
#: The rows of each statement that returns rows, in order.
Results = list[list[dict[str, Any]]]

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

    async def run_all(
        self, statements: list[Statement], *, prepare: bool = False
    ) -> tuple[Connection, Results]:
        """:meth:`run` for several statements, in one round trip (see :func:`execute_all`)."""
        pool = await self.pool()
        for attempt in (1, 2):
            connection = await pool.getconn()
            try:
                results = await execute_all(connection, statements, prepare=prepare)
            except psycopg.OperationalError:
                await self.drop(connection)
                if attempt == 2:
                    raise
                logger.warning("A pooled PostgreSQL connection was broken: reconnecting")
                await pool.check()
                continue
            except BaseException:
                await self.drop(connection)
                raise
            return connection, results
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


async def execute_all(
    connection: Connection, statements: list[Statement], *, prepare: bool = False
) -> Results:
    """Run ``statements`` in order in one round trip; the rows of those that return rows.

    Without ``prepare``: one query string, values bound on the client (one simple-query
    message: any pooler). With it: psycopg's pipeline mode, each statement with parameters
    prepared on the server once per connection and then only bound and executed (the
    extended protocol's messages, flushed together with one Sync): less parsing and planning
    at the server, for direct PostgreSQL or a pooler that keeps prepared statements.
    """
    if not prepare:
        cursor = connection.cursor()
        params = [value for _sql, values in statements for value in values]
        await cursor.execute("; ".join(sql for sql, _values in statements), params or None)
        return await _results(cursor)
    cursors = []
    async with connection.pipeline():
        for sql, values in statements:
            server_cursor = psycopg.AsyncCursor(connection, row_factory=dict_row)
            await server_cursor.execute(sql, values or None, prepare=bool(values))
            cursors.append(server_cursor)
    return [await cursor.fetchall() for cursor in cursors if _has_rows(cursor)]


def _has_rows(cursor: psycopg.AsyncCursor[Any]) -> bool:
    # The result's status, not ``cursor.description``: that builds a Column per column of
    # every result, a tenth of an update's CPU on the storage's wide SELECTs.
    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


async def _results(cursor: psycopg.AsyncCursor[Any]) -> Results:
    """The rows of every statement of one query string that returns rows, in order.

    Every result is already on the client (one query string): fetching does not wait.
    """
    results = []
    while True:
        if _has_rows(cursor):
            results.append(await cursor.fetchall())
        if not cursor.nextset():
            return results
