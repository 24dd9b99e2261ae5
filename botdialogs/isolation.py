"""Event isolation: one chat's updates are handled one at a time.

aiogram locks the FSM key around an update and aiogram_dialog locks the stack key inside it;
both name the same chat here, and a task that already holds a chat's lock passes through
(re-entrant per task), so the nested lock costs nothing and cannot deadlock.

- :class:`LocalEventIsolation`: asyncio locks, one process only (SQLite, MemoryStorage).
- :class:`PostgresEventIsolation`: PostgreSQL advisory locks, across every process and machine.
- :class:`DatabaseEventIsolation`: picks one of those from the Django database in use.
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey
from django.db import connections

from botdialogs.pg import LoopPool


def chat_lock_name(key: StorageKey) -> str:
    """The lock of the chat ``key`` belongs to (user and destiny do not matter)."""
    return f"{key.bot_id}:{key.chat_id}:{key.thread_id or 0}:{key.business_connection_id or ''}"


class _ReentrantByTask(BaseEventIsolation):
    """Skips acquiring a lock the current task already holds."""

    def __init__(self) -> None:
        self._held: weakref.WeakKeyDictionary[asyncio.Task[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        name = chat_lock_name(key)
        task = asyncio.current_task()
        held = self._held.setdefault(task, set()) if task is not None else set()
        if name in held:
            yield
            return
        async with self._acquire(name):
            held.add(name)
            try:
                yield
            finally:
                held.discard(name)

    def _acquire(self, name: str) -> Any:
        raise NotImplementedError

    async def close(self) -> None:
        """Nothing is held between updates."""


class LocalEventIsolation(_ReentrantByTask):
    """asyncio locks per chat, per event loop: serialises one process only."""

    def __init__(self) -> None:
        super().__init__()
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, weakref.WeakValueDictionary[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    @asynccontextmanager
    async def _acquire(self, name: str) -> AsyncGenerator[None, None]:
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
        lock = per_loop.get(name)
        if lock is None:
            lock = asyncio.Lock()
            per_loop[name] = lock
        async with lock:
            yield


def advisory_key(name: str) -> int:
    """A signed 64-bit advisory lock id for a chat lock name."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"botdialogs").digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresEventIsolation(_ReentrantByTask):
    """PostgreSQL advisory locks, held on connections of their own.

    Not Django's connection: that one is shared by every coroutine of the thread, and
    advisory locks are re-entrant per connection, so two chats' coroutines would both get the
    lock. Each held lock uses one connection from a per-event-loop pool; a connection that
    dies releases its locks on the server, so a crashed worker never leaves a chat locked.

    Updates of one chat in one process first queue on an in-process lock, so a busy chat
    holds one connection per process, not one per waiting update.
    """

    def __init__(self, using: str = "default", max_connections: int = 10) -> None:
        super().__init__()
        # Each chat being handled holds one: this many chats of one process run at once.
        self.pool = LoopPool(using=using, max_size=max_connections)
        self.local = LocalEventIsolation()

    @asynccontextmanager
    async def _acquire(self, name: str) -> AsyncGenerator[None, None]:
        async with self.local._acquire(name), self._advisory(name):
            yield

    @asynccontextmanager
    async def _advisory(self, name: str) -> AsyncGenerator[None, None]:
        lock_id = advisory_key(name)
        connection = await self.pool.get()
        try:
            await self.pool.execute(connection, "SELECT pg_advisory_lock(%s)", (lock_id,))
        except BaseException:
            await self.pool.drop(connection)  # the server drops a half-taken lock with it
            raise
        try:
            yield
        finally:
            try:
                await self.pool.execute(connection, "SELECT pg_advisory_unlock(%s)", (lock_id,))
            except BaseException:
                await self.pool.drop(connection)  # closing the session releases the lock
                raise
            await self.pool.put(connection)

    async def close(self) -> None:
        """Close the idle connections of the running loop."""
        await self.pool.close()


class DatabaseEventIsolation(BaseEventIsolation):
    """Advisory locks on PostgreSQL; in-process locks elsewhere (SQLite is single-process)."""

    def __init__(self, using: str = "default") -> None:
        if connections[using].vendor == "postgresql":
            self.backend: BaseEventIsolation = PostgresEventIsolation(using=using)
        else:
            self.backend = LocalEventIsolation()

    def lock(self, key: StorageKey) -> Any:
        """The chat lock of ``key``, from the chosen backend."""
        return self.backend.lock(key)

    async def close(self) -> None:
        """Close the backend's connections."""
        await self.backend.close()
