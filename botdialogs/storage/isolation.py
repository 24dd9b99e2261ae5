"""Event isolation: one chat's updates are handled one at a time.

aiogram locks the FSM key around an update and aiogram_dialog locks the stack key inside it;
both name the same chat here, and a task that already holds a chat's lock passes through
(re-entrant per task), so the nested lock costs nothing and cannot deadlock.

- :class:`LocalEventIsolation`: asyncio locks, one process only (MemoryStorage).
- With :class:`~botdialogs.storage.DjangoStorage` the isolation is the storage's own
  (:meth:`~botdialogs.storage.DjangoStorage.create_isolation`): its chat lock is the unit of
  work, a transaction-scoped PostgreSQL advisory lock taken in the update's first round trip
  (in-process locks on SQLite, which serves one process).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey

from botdialogs.storage.rows import chat_scope


def chat_lock_name(key: StorageKey) -> str:
    """The lock of the chat ``key`` belongs to (user and destiny do not matter)."""
    return chat_scope(key).lock_name


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock id (signed 64 bits) of a lock name.

    The update path locks ``advisory_key(scope.lock_name)`` in its first round trip; repairs
    in the admin take the same id.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"botdialogs").digest()
    return int.from_bytes(digest, "big", signed=True)


class LocalEventIsolation(BaseEventIsolation):
    """asyncio locks per chat, per event loop, re-entrant per task: one process only."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, weakref.WeakValueDictionary[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()
        self._held: weakref.WeakKeyDictionary[asyncio.Task[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        """Hold the chat of ``key`` for the block."""
        async with self.hold(chat_lock_name(key)):
            yield

    @asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        """Hold the lock ``name`` for the block; the task holding it already passes through."""
        task = asyncio.current_task()
        held = self._held.setdefault(task, set()) if task is not None else set()
        if name in held:
            yield
            return
        per_loop = self._locks.setdefault(asyncio.get_running_loop(), weakref.WeakValueDictionary())
        lock = per_loop.get(name)
        if lock is None:
            lock = asyncio.Lock()
            per_loop[name] = lock
        async with lock:
            held.add(name)
            try:
                yield
            finally:
                held.discard(name)

    async def close(self) -> None:
        """Nothing is held between updates."""
