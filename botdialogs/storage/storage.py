"""DjangoStorage: aiogram's ``BaseStorage`` on Django models, one transaction per update.

aiogram_dialog keeps a stack under destiny ``aiogd:stack:<stack id>`` and each open dialog
under ``aiogd:context:<intent id>``; those go to :class:`~botdialogs.models.DialogStack` and
:class:`~botdialogs.models.DialogContext` as real columns. Every other destiny, and every
state, goes to :class:`~botdialogs.models.FsmRecord`.

Inside an update every read and write goes to the chat's unit of work
(:mod:`.unit_of_work`), opened in one place, :meth:`DjangoStorage.unit_of_work`: by
botdialogs' FSM middleware with the work's claim, or, on a plain aiogram Dispatcher, by the
storage's event isolation (:meth:`DjangoStorage.create_isolation`), whose lock aiogram's
own FSM middleware takes around every handler. Either way an update costs two round trips
and one transaction. On a plain Dispatcher without the isolation the update's reads of its
chat come from one round trip (:mod:`.snapshot`) and each write is its own small
transaction; outside an update each call is.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext
from datetime import timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    DEFAULT_DESTINY,
    BaseEventIsolation,
    BaseStorage,
    StateType,
    StorageKey,
)
from django.db import connections
from django.utils import timezone

from botdialogs.exceptions import UnstorableData
from botdialogs.storage import snapshot
from botdialogs.storage.claims import Claim
from botdialogs.storage.database import StorageDatabase, WritePlan
from botdialogs.storage.jsonvalues import json_clone
from botdialogs.storage.rows import (
    ROW_TABLES,
    TOP_STATE,
    ChatScope,
    Row,
    RowKey,
    RowKind,
    chat_scope,
    data_kind,
    row_key,
    to_json,
)
from botdialogs.storage.unit_of_work import UnitOfWork

# last_seen of a TelegramChat is refreshed at most this often, to keep updates write-free.
SEEN_REFRESH = timedelta(minutes=5)
BACKENDS = ("auto", "orm", "psycopg")

_current_unit: contextvars.ContextVar[UnitOfWork | None] = contextvars.ContextVar(
    "botdialogs_unit_of_work", default=None
)


def _as_timedelta(value: float | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


class DjangoStorage(BaseStorage):
    """aiogram FSM storage on Django models, with structured aiogram_dialog tables.

    ``state_ttl`` / ``data_ttl`` (seconds or timedelta) work like RedisStorage's: expired
    values read as empty, and ``manage.py botdialogs_cleanup`` deletes them. Off by default.
    ``backend``: "auto" (psycopg on PostgreSQL, the ORM elsewhere), "orm" or "psycopg".
    ``using``: the Django database alias. ``max_connections``: PostgreSQL connections per
    process (event loop), one per chat being handled. ``synchronous_commit=False`` commits
    without waiting for the WAL flush: faster, and a server crash may forget the last
    updates (like a Redis without persistence); Telegram does not redeliver those.
    ``prepared_statements=True`` (PostgreSQL): statements are prepared on the server once
    per connection and sent in pipeline mode, still one round trip each way; only for a
    direct connection or a pooler that keeps prepared statements (not PgBouncer's
    transaction pooling before 1.21 or without ``max_prepared_statements``).
    """

    seen_refresh = SEEN_REFRESH

    def __init__(
        self,
        *,
        state_ttl: float | timedelta | None = None,
        data_ttl: float | timedelta | None = None,
        backend: str = "auto",
        using: str = "default",
        max_connections: int = 10,
        synchronous_commit: bool = True,
        prepared_statements: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        from botdialogs.storage.isolation import LocalEventIsolation

        self.using = using
        self.state_ttl = _as_timedelta(state_ttl)
        self.data_ttl = _as_timedelta(data_ttl)
        # Updates of one chat queue in this process first: a busy chat holds one connection.
        self.local_locks = LocalEventIsolation()
        vendor = connections[using].vendor
        if backend == "psycopg" or (backend == "auto" and vendor == "postgresql"):
            from botdialogs.storage.postgres import PostgresDatabase

            self.database: StorageDatabase = PostgresDatabase(
                self.data_ttl,
                using=using,
                max_connections=max_connections,
                synchronous_commit=synchronous_commit,
                prepared_statements=prepared_statements,
            )
        else:
            from botdialogs.storage.orm import OrmDatabase

            self.database = OrmDatabase(self.data_ttl)

    # -- unit of work -----------------------------------------------------------------------
    def create_isolation(self) -> BaseEventIsolation:
        """The event isolation whose chat lock is this storage's unit of work.

        Give it to the Dispatcher (``events_isolation=``) and to ``setup_dialogs``: each
        update's storage work then takes two round trips and one transaction.
        """
        return UnitOfWorkIsolation(self)

    @asynccontextmanager
    async def unit_of_work(
        self, key: StorageKey | None, claim: Claim | None = None
    ) -> AsyncIterator[UnitOfWork]:
        """Lock the chat of ``key``, take ``claim`` and load the chat; commit at the end.

        The one place a unit of work is opened. On botdialogs' Dispatchers the FSM
        middleware (:mod:`botdialogs.engine.middleware`) opens it once per update, with the
        claim the update, action or timer brought in the event data; the storage's event
        isolation (aiogram_dialog's stack lock inside the update) then finds it held by
        the running task and passes through. ``key`` None: no chat (an inline query), only
        the claim. A nested block of the same task (a node step inside a handler) joins the
        open unit; it cannot bring a claim of its own. See :mod:`.unit_of_work` for what an
        exception in the block does.
        """
        outer = self.current_unit()
        if outer is not None:
            if claim is not None:
                raise ValueError(f"{claim.describe()}: a claim opens a unit of work, never joins")
            yield outer
            return
        if key is None and claim is None:
            raise ValueError("A unit of work needs a chat, a claim, or both")
        scope = chat_scope(key) if key is not None else None
        async with self.local_locks.hold(scope.lock_name) if scope else nullcontext():
            unit = UnitOfWork(self, scope, claim)
            await unit.open()
            token = _current_unit.set(unit)
            try:
                yield unit
            except BaseException as error:
                _current_unit.reset(token)
                await unit.close(error)
                raise
            _current_unit.reset(token)
            await unit.close(None)
            if scope is not None:
                snapshot.written(self.using, scope)

    def current_unit(self) -> UnitOfWork | None:
        """The unit of work of the running task, if it has one."""
        unit = _current_unit.get()
        # A task started inside an update copies the context but is not part of the update.
        if unit is not None and unit.storage is self and unit.task is asyncio.current_task():
            return unit
        return None

    @staticmethod
    def running_unit() -> UnitOfWork | None:
        """The unit of work of the running task, whichever DjangoStorage opened it."""
        unit = _current_unit.get()
        if unit is not None and unit.task is asyncio.current_task():
            return unit
        return None

    async def _start_snapshot(self, scope: ChatScope) -> None:
        started = snapshot.start(self, self.using, scope)
        rows, _chats = await self.database.load_scope(scope)
        started.fill(rows)

    async def _get(self, row: RowKey) -> Row:
        unit = self.current_unit()
        if unit is not None:
            return await unit.get(row)
        update = snapshot.current(self, row.scope)
        found = update.get(row) if update is not None else None
        if found is not None:
            return found
        return await self.database.load_row(row)

    async def _put(self, row: RowKey, value: Row) -> None:
        unit = self.current_unit()
        if unit is not None:
            await unit.get(row)  # records the original, for change detection
            unit.put(row, value)
            return
        update = snapshot.current(self, row.scope)
        if update is not None:
            # With a TTL a stack is rewritten on every update: that renews its expiry.
            renews = self.data_ttl and row.kind is RowKind.STACK and value.data
            if update.get(row) == value and not renews:
                return
        snapshot.written(self.using, row.scope, by=update)
        try:
            await self._write(row, value)
        except BaseException:
            if update is not None:
                update.overtaken = True  # it may or may not have landed: read it again
            raise
        # Whoever wrote meanwhile, this write is theirs to see and ours to keep: mark again.
        snapshot.written(self.using, row.scope, by=update)
        if update is not None:
            update.rows[row] = value

    async def _write(self, row: RowKey, value: Row) -> None:
        plan = WritePlan.build(
            {row: value},
            now=timezone.now(),
            state_ttl=self.state_ttl,
            data_ttl=self.data_ttl,
            link_contexts=True,
        )
        await self.database.write(plan)

    # -- BaseStorage --------------------------------------------------------------------------
    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Store the state as its string (``State.state``); ``None`` clears it."""
        row = row_key(RowKind.FSM, key)
        current = await self._get(row)
        value = state.state if isinstance(state, State) else state
        await self._put(row, Row(state=value, data=current.data, pk=current.pk))

    async def get_state(self, key: StorageKey) -> str | None:
        """The stored state string, or None.

        Outside a unit of work the default destiny's read starts the update's snapshot of
        the chat (:mod:`.snapshot`): aiogram's FSM middleware makes it first in every update.
        """
        row = row_key(RowKind.FSM, key)
        if key.destiny == DEFAULT_DESTINY and self.current_unit() is None:
            await self._start_snapshot(row.scope)
        return (await self._get(row)).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the data; ``{}`` clears it. Non-JSON values raise UnstorableData now."""
        if not isinstance(data, Mapping):
            raise UnstorableData(f"Data must be a mapping, not {type(data).__name__}")
        value = to_json(data, key)
        row = row_key(data_kind(key), key)
        table = ROW_TABLES[row.kind]
        if table.complete is not None:
            await table.complete(row, value, self._get)
        current = await self._get(row)
        await self._put(row, Row(state=current.state, data=value, pk=current.pk))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """A copy of the stored data (``{}`` when there is none)."""
        data = json_clone((await self._get(row_key(data_kind(key), key))).data)
        data.pop(TOP_STATE, None)
        return data

    async def close(self) -> None:
        """Close this loop's own connections (Django's stay Django's)."""
        await self.database.close()


class UnitOfWorkIsolation(BaseEventIsolation):
    """Event isolation whose chat lock is a :class:`DjangoStorage` unit of work.

    Inside an update of botdialogs' Dispatchers the middleware has opened the unit already:
    aiogram_dialog's stack lock passes through. Under aiogram's own FSM middleware (a plain
    ``Dispatcher(storage=..., events_isolation=storage.create_isolation())``) this lock is
    what opens the unit (without a claim: aiogram passes none), so that drop-in use gets
    two round trips and one transaction per update too.
    """

    def __init__(self, storage: DjangoStorage) -> None:
        self.storage = storage

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        """Hold the chat of ``key`` (and its unit of work) for the block."""
        async with self.storage.unit_of_work(key):
            yield

    async def close(self) -> None:
        """Close the storage's connections of this loop."""
        await self.storage.close()
