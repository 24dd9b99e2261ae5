"""DjangoStorage: aiogram's ``BaseStorage`` on Django models, one transaction per update.

aiogram_dialog keeps a stack under destiny ``aiogd:stack:<stack id>`` and each open dialog
under ``aiogd:context:<intent id>``; those go to :class:`~botdialogs.models.DialogStack` and
:class:`~botdialogs.models.DialogContext` as real columns. Every other destiny, and every
state, goes to :class:`~botdialogs.models.FsmRecord`.

Outside an update each call is its own small transaction. Inside an update the Dispatcher's
FSM middleware (:mod:`botdialogs.middleware`) opens a *unit of work* for the chat: the first
read loads everything stored for that chat at once, writes are kept in memory, and at the
end of the update they are written together in one transaction, or dropped if the update
raised. So the stored stack is always as before the update or as after it, never half.

The queries go through Django's ORM (:mod:`.orm`), or on PostgreSQL through psycopg's async
API (:mod:`.postgres`), which measured faster; ``engine=`` chooses.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from django.db import connections
from django.utils import timezone

from botdialogs.exceptions import UnstorableData
from botdialogs.storage.database import StorageDatabase, WritePlan
from botdialogs.storage.rows import (
    CONTEXT_PREFIX,
    STACK_PREFIX,
    TOP_STATE,
    ChatIdent,
    ChatScope,
    Row,
    RowId,
    chat_changed,
    chat_scope,
    data_kind,
    in_scope,
    row_id,
    to_json,
)

__all__ = ["CONTEXT_PREFIX", "STACK_PREFIX", "DjangoStorage", "chat_scope", "to_json"]

# last_seen of a TelegramChat is refreshed at most this often, to keep updates write-free.
SEEN_REFRESH = timedelta(minutes=5)
ENGINES = ("auto", "orm", "psycopg")


class UnitOfWork:
    """One update's view of one chat: loaded once, written once (see the module docstring)."""

    def __init__(self, storage: DjangoStorage, scope: ChatScope) -> None:
        self.storage = storage
        self.scope = scope
        self.task = asyncio.current_task()
        self.rows: dict[RowId, Row] = {}
        self.original: dict[RowId, Row] = {}
        self.loaded = False
        self.seen: dict[ChatIdent, dict[str, Any]] = {}
        self.known_chats: dict[ChatIdent, dict[str, Any]] = {}

    async def get(self, row: RowId) -> Row:
        """The row as this update sees it (loading the chat on first use)."""
        if not self.loaded:
            self.rows, self.known_chats = await self.storage.database.load_scope(self.scope)
            self.original = copy.deepcopy(self.rows)
            self.loaded = True
        if row not in self.rows:
            # In the chat and not loaded means not stored; another chat's row is asked for.
            found = (
                Row() if in_scope(row, self.scope) else await self.storage.database.load_row(row)
            )
            self.rows[row] = found
            self.original[row] = copy.deepcopy(found)
        return self.rows[row]

    def note_seen(self, values: dict[str, Any]) -> None:
        """Remember the chat/user of this update; written with the update if it changed."""
        self.seen[(values["bot_id"], values["chat_id"], values["user_id"])] = values

    def plan(self) -> WritePlan | None:
        """What this update changed, as a write plan (None when nothing changed)."""
        ttl = self.storage.data_ttl
        changes = {
            row: value
            for row, value in self.rows.items()
            # With a TTL a stack is rewritten on every update: that renews its expiry.
            if value != self.original.get(row) or (ttl and row[0] == "stack" and value.data)
        }
        refresh_before = timezone.now() - SEEN_REFRESH
        chats = [
            {"is_blocked": False, **values}
            for ident, values in self.seen.items()
            if chat_changed(self.known_chats.get(ident), values, refresh_before)
        ]
        if not changes and not chats:
            return None
        return WritePlan.build(
            changes,
            now=timezone.now(),
            state_ttl=self.storage.state_ttl,
            data_ttl=ttl,
            chats=chats,
            known_stacks={
                row[1:]: value.pk
                for row, value in self.original.items()
                if row[0] == "stack" and value.pk is not None
            },
        )


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
    ``engine``: "auto" (psycopg on PostgreSQL, the ORM elsewhere), "orm" or "psycopg".
    ``using``: the Django database alias.
    """

    def __init__(
        self,
        *,
        state_ttl: float | timedelta | None = None,
        data_ttl: float | timedelta | None = None,
        engine: str = "auto",
        using: str = "default",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        self.state_ttl = _as_timedelta(state_ttl)
        self.data_ttl = _as_timedelta(data_ttl)
        vendor = connections[using].vendor
        if engine == "psycopg" or (engine == "auto" and vendor == "postgresql"):
            from botdialogs.storage.postgres import PostgresDatabase

            self.database: StorageDatabase = PostgresDatabase(self.data_ttl, using=using)
        else:
            from botdialogs.storage.orm import OrmDatabase

            self.database = OrmDatabase(self.data_ttl)

    # -- unit of work -----------------------------------------------------------------------
    @asynccontextmanager
    async def unit_of_work(self, key: StorageKey) -> AsyncIterator[UnitOfWork]:
        """Load the chat of ``key`` once and write this block's changes in one transaction.

        Changes are dropped if the block raises. A nested block of the same task joins the
        outer one.
        """
        outer = self._unit()
        if outer is not None:
            yield outer
            return
        unit = UnitOfWork(self, chat_scope(key))
        token = _current_unit.set(unit)
        try:
            yield unit
            plan = unit.plan()
            if plan is not None:
                await self.database.write(plan)
        finally:
            _current_unit.reset(token)

    def _unit(self) -> UnitOfWork | None:
        unit = _current_unit.get()
        # A task started inside an update copies the context but is not part of the update.
        if unit is not None and unit.storage is self and unit.task is asyncio.current_task():
            return unit
        return None

    async def _get(self, row: RowId) -> Row:
        unit = self._unit()
        if unit is not None:
            return await unit.get(row)
        return await self.database.load_row(row)

    async def _put(self, row: RowId, value: Row) -> None:
        unit = self._unit()
        if unit is not None:
            await unit.get(row)  # records the original, for change detection
            unit.rows[row] = value
            return
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
        row = row_id("fsm", key)
        current = await self._get(row)
        value = state.state if isinstance(state, State) else state
        await self._put(row, Row(state=value, data=current.data, pk=current.pk))

    async def get_state(self, key: StorageKey) -> str | None:
        """The stored state string, or None."""
        return (await self._get(row_id("fsm", key))).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the data; ``{}`` clears it. Non-JSON values raise UnstorableData now."""
        if not isinstance(data, Mapping):
            raise UnstorableData(f"Data must be a mapping, not {type(data).__name__}")
        value = to_json(data, key)
        kind = data_kind(key)
        if kind == "stack" and "intents" in value:
            value[TOP_STATE] = await self._top_state(key, value["intents"])
        row = row_id(kind, key)
        current = await self._get(row)
        await self._put(row, Row(state=current.state, data=value, pk=current.pk))

    async def _top_state(self, key: StorageKey, intents: list[str]) -> str:
        if not intents:
            return ""
        context_key = StorageKey(
            bot_id=key.bot_id,
            chat_id=key.chat_id,
            user_id=key.user_id,
            thread_id=key.thread_id,
            business_connection_id=key.business_connection_id,
            destiny=f"{CONTEXT_PREFIX}{intents[-1]}",
        )
        context = await self._get(row_id("context", context_key))
        return str(context.data.get("state") or "")

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """A copy of the stored data (``{}`` when there is none)."""
        data = copy.deepcopy((await self._get(row_id(data_kind(key), key))).data)
        data.pop(TOP_STATE, None)
        return data

    async def close(self) -> None:
        """Close this loop's own connections (Django's stay Django's)."""
        await self.database.release_loop()
