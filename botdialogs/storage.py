"""DjangoStorage: aiogram's ``BaseStorage`` on Django models, one transaction per update.

aiogram_dialog keeps a stack under destiny ``aiogd:stack:<stack id>`` and each open dialog
under ``aiogd:context:<intent id>``; those go to :class:`~botdialogs.models.DialogStack` and
:class:`~botdialogs.models.DialogContext` as real columns. Every other destiny, and every
state, goes to :class:`~botdialogs.models.FsmRecord`.

Outside an update each call is its own small transaction. Inside an update the Dispatcher's
FSM middleware (:mod:`botdialogs.middleware`) opens a *unit of work* for the chat: the first
read loads everything stored for that chat in one go, writes are kept in memory, and at the
end of the update they are written together in one transaction, or dropped if the update
raised. So the stored stack is always as before the update or as after it, never half.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, StateType, StorageKey
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from botdialogs.exceptions import UnstorableData
from botdialogs.models import DialogContext, DialogStack, FsmRecord, TelegramChat

STACK_PREFIX = "aiogd:stack:"
CONTEXT_PREFIX = "aiogd:context:"
# Stack fields aiogram_dialog 2.6 saves; anything else it may add later goes to ``extra``.
STACK_FIELDS = (
    "last_message_id",
    "last_reply_keyboard",
    "last_media_id",
    "last_media_unique_id",
    "last_income_media_group_id",
)
CONTEXT_FIELDS = ("state", "start_data", "dialog_data", "widget_data", "access_settings")
# Known fields a caller left out are listed here in ``extra``, so any dict round-trips exactly.
ABSENT = "_absent"
# last_seen of a TelegramChat is refreshed at most this often, to keep updates write-free.
SEEN_REFRESH = timedelta(minutes=5)

ChatScope = tuple[int, int, int, str]  # bot_id, chat_id, thread_id, business_connection_id
RowId = tuple[str, int, int, int, int, str, str]  # kind, bot, chat, user, thread, bcid, name


def chat_scope(key: StorageKey) -> ChatScope:
    """The chat a key belongs to: what one unit of work loads and one lock serialises."""
    return (key.bot_id, key.chat_id, key.thread_id or 0, key.business_connection_id or "")


def _row_id(kind: str, key: StorageKey) -> RowId:
    destiny = key.destiny
    if kind == "stack":
        name = destiny[len(STACK_PREFIX) :]
    elif kind == "context":
        name = destiny[len(CONTEXT_PREFIX) :]
    else:
        name = destiny
    return (
        kind,
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id or 0,
        key.business_connection_id or "",
        name,
    )


def _data_kind(key: StorageKey) -> str:
    if key.destiny.startswith(STACK_PREFIX):
        return "stack"
    if key.destiny.startswith(CONTEXT_PREFIX):
        return "context"
    return "fsm"


def to_json(data: Mapping[str, Any], key: StorageKey) -> dict[str, Any]:
    """A deep, JSON-only copy of ``data``; raises UnstorableData naming the key on failure."""
    try:
        return json.loads(json.dumps(dict(data)))
    except (TypeError, ValueError) as error:
        raise UnstorableData(
            f"Cannot store data for chat {key.chat_id}, user {key.user_id}, destiny "
            f"{key.destiny!r}: {error}. Store JSON values only (convert datetimes to ISO "
            "strings, sets to lists)."
        ) from error


@dataclass
class _Row:
    """What the storage knows about one key: state, data, and the row's primary key."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    pk: int | None = None


def _ident_q(row_id: RowId) -> Q:
    _, bot_id, chat_id, user_id, thread_id, bcid, _name = row_id
    return Q(
        bot_id=bot_id,
        chat_id=chat_id,
        user_id=user_id,
        thread_id=thread_id,
        business_connection_id=bcid,
    )


def _with_extra(data: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    extra = dict(extra)
    for name in extra.pop(ABSENT, ()):
        data.pop(name, None)
    data.update(extra)
    return data


def _absent(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    missing = [name for name in names if name not in data]
    return {ABSENT: missing} if missing else {}


def _stack_data(row: DialogStack) -> dict[str, Any]:
    data = {"_id": row.stack_id, "intents": list(row.intents), "_top_state": row.state}
    data.update({name: getattr(row, name) for name in STACK_FIELDS})
    return _with_extra(data, row.extra)


def _context_data(row: DialogContext) -> dict[str, Any]:
    data = {
        "_intent_id": row.intent_id,
        "_stack_id": row.stack_key,
        "state": row.state,
        "start_data": row.start_data,
        "dialog_data": row.dialog_data,
        "widget_data": row.widget_data,
        "access_settings": row.access_settings,
    }
    return _with_extra(data, row.extra)


def _key_values(row_id: RowId) -> dict[str, Any]:
    _, bot_id, chat_id, user_id, thread_id, bcid, _name = row_id
    return {
        "bot_id": bot_id,
        "chat_id": chat_id,
        "user_id": user_id,
        "thread_id": thread_id,
        "business_connection_id": bcid,
    }


_KEY_FIELDS = ["bot_id", "chat_id", "user_id", "thread_id", "business_connection_id"]


class _Database:
    """The synchronous half: queries run in Django's thread through sync_to_async."""

    def __init__(self, state_ttl: timedelta | None, data_ttl: timedelta | None) -> None:
        self.state_ttl = state_ttl
        self.data_ttl = data_ttl

    # -- reads ------------------------------------------------------------------------------
    def load_scope(self, scope: ChatScope) -> dict[RowId, _Row]:
        """Every row stored for one chat, in three queries on one connection."""
        bot_id, chat_id, thread_id, bcid = scope
        where = Q(bot_id=bot_id, chat_id=chat_id, thread_id=thread_id, business_connection_id=bcid)
        now = timezone.now()
        rows: dict[RowId, _Row] = {}
        for record in FsmRecord.objects.filter(where):
            rows[("fsm", *self._key(record), record.destiny)] = self._fsm_row(record, now)
        live_stacks: set[int] = set()
        for stack in DialogStack.objects.filter(where):
            if stack.expires_at is None or stack.expires_at > now:
                live_stacks.add(stack.pk)
                rows[("stack", *self._key(stack), stack.stack_id)] = _Row(
                    data=_stack_data(stack), pk=stack.pk
                )
        for context in DialogContext.objects.filter(where):
            if self._context_alive(context, live_stacks, now):
                rows[("context", *self._key(context), context.intent_id)] = _Row(
                    data=_context_data(context), pk=context.pk
                )
        return rows

    @staticmethod
    def _key(row: Any) -> tuple[int, int, int, int, str]:
        return (row.bot_id, row.chat_id, row.user_id, row.thread_id, row.business_connection_id)

    @staticmethod
    def _fsm_row(record: FsmRecord, now: datetime) -> _Row:
        state = record.state
        if record.state_expires_at is not None and record.state_expires_at <= now:
            state = None
        data = record.data
        if record.data_expires_at is not None and record.data_expires_at <= now:
            data = {}
        return _Row(state=state, data=data, pk=record.pk)

    def _context_alive(self, context: DialogContext, live_stacks: set[int], now: datetime) -> bool:
        if context.stack_id is not None:
            return context.stack_id in live_stacks
        return self.data_ttl is None or context.updated_at + self.data_ttl > now

    def load_row(self, row_id: RowId) -> _Row:
        """One key outside a unit of work."""
        kind, name = row_id[0], row_id[-1]
        now = timezone.now()
        where = _ident_q(row_id)
        if kind == "fsm":
            record = FsmRecord.objects.filter(where, destiny=name).first()
            return self._fsm_row(record, now) if record else _Row()
        if kind == "stack":
            stack = DialogStack.objects.filter(where, stack_id=name).first()
            if stack is None or (stack.expires_at is not None and stack.expires_at <= now):
                return _Row()
            return _Row(data=_stack_data(stack), pk=stack.pk)
        context = (
            DialogContext.objects.filter(where, intent_id=name).select_related("stack").first()
        )
        if context is None:
            return _Row()
        stack = context.stack
        live = (
            {stack.pk} if stack and (stack.expires_at is None or stack.expires_at > now) else set()
        )
        if not self._context_alive(context, live, now):
            return _Row()
        return _Row(data=_context_data(context), pk=context.pk)

    # -- writes -----------------------------------------------------------------------------
    def write(
        self,
        changes: dict[RowId, _Row],
        seen: list[dict[str, Any]],
        known_stacks: dict[tuple, int] | None = None,
        link_contexts: bool = False,
    ) -> None:
        """Write every change of one update in one transaction.

        ``known_stacks`` maps stack keys to row ids already read, so contexts of an unchanged
        stack need no lookup. ``link_contexts`` attaches contexts written earlier, on their
        own, to a stack written now (a unit of work writes both together and needs no link).
        """
        now = timezone.now()
        with transaction.atomic():
            fsm = {r: v for r, v in changes.items() if r[0] == "fsm"}
            stacks = {r: v for r, v in changes.items() if r[0] == "stack"}
            contexts = {r: v for r, v in changes.items() if r[0] == "context"}
            self._write_fsm(fsm, now)
            written = self._write_stacks(stacks, now)
            self._write_contexts(contexts, {**(known_stacks or {}), **written})
            if link_contexts:
                self._link_contexts(stacks, written)
            self._write_seen(seen)

    def _delete(self, model: type[Any], rows: list[RowId], name_field: str) -> None:
        if not rows:
            return
        where = Q()
        for row_id in rows:
            where |= _ident_q(row_id) & Q(**{name_field: row_id[-1]})
        model.objects.filter(where).delete()

    def _write_fsm(self, changes: dict[RowId, _Row], now: datetime) -> None:
        keep, drop = [], []
        for row_id, row in changes.items():
            if row.state is None and not row.data:
                drop.append(row_id)
                continue
            keep.append(
                FsmRecord(
                    **_key_values(row_id),
                    destiny=row_id[-1],
                    state=row.state,
                    data=row.data,
                    state_expires_at=now + self.state_ttl
                    if self.state_ttl and row.state is not None
                    else None,
                    data_expires_at=now + self.data_ttl if self.data_ttl and row.data else None,
                    updated_at=now,
                )
            )
        self._delete(FsmRecord, drop, "destiny")
        if keep:
            FsmRecord.objects.bulk_create(
                keep,
                update_conflicts=True,
                unique_fields=[*_KEY_FIELDS, "destiny"],
                update_fields=[
                    "state",
                    "data",
                    "state_expires_at",
                    "data_expires_at",
                    "updated_at",
                ],
            )

    def _write_stacks(self, changes: dict[RowId, _Row], now: datetime) -> dict[tuple, int]:
        keep, drop = [], []
        for row_id, row in changes.items():
            if not row.data:
                drop.append(row_id)
                continue
            data = dict(row.data)
            absent = _absent(data, ("_id", "intents", *STACK_FIELDS))
            data.pop("_id", None)
            intents = list(data.pop("intents", []) or [])
            values = {name: data.pop(name, None) for name in STACK_FIELDS}
            values["last_reply_keyboard"] = bool(values["last_reply_keyboard"])
            top_state = data.pop("_top_state", "")
            keep.append(
                DialogStack(
                    **_key_values(row_id),
                    stack_id=row_id[-1],
                    intents=intents,
                    depth=len(intents),
                    state=top_state,
                    extra={**data, **absent},
                    expires_at=now + self.data_ttl if self.data_ttl else None,
                    updated_at=now,
                    **values,
                )
            )
        self._delete(DialogStack, drop, "stack_id")
        pks: dict[tuple, int] = {}
        if keep:
            created = DialogStack.objects.bulk_create(
                keep,
                update_conflicts=True,
                unique_fields=[*_KEY_FIELDS, "stack_id"],
                update_fields=[
                    "intents",
                    "depth",
                    "state",
                    "extra",
                    "expires_at",
                    "updated_at",
                    *STACK_FIELDS,
                ],
            )
            for stack in created:
                if stack.pk is not None:
                    pks[(*self._key(stack), stack.stack_id)] = stack.pk
        return pks

    def _link_contexts(self, stacks: dict[RowId, _Row], written: dict[tuple, int]) -> None:
        for row_id, row in stacks.items():
            pk = written.get(row_id[1:])
            if pk is not None and row.data.get("intents"):
                DialogContext.objects.filter(
                    _ident_q(row_id), intent_id__in=row.data["intents"], stack__isnull=True
                ).update(stack_id=pk)

    def _write_contexts(self, changes: dict[RowId, _Row], stack_pks: dict[tuple, int]) -> None:
        keep, drop = [], []
        missing: set[tuple] = set()
        for row_id, row in changes.items():
            if not row.data:
                drop.append(row_id)
                continue
            stack_ref = (*row_id[1:6], row.data.get("_stack_id", ""))
            if stack_ref not in stack_pks:
                missing.add(stack_ref)
        if missing:
            where = Q()
            for ref in missing:
                where |= Q(**dict(zip([*_KEY_FIELDS, "stack_id"], ref, strict=True)))
            for stack in DialogStack.objects.filter(where).only(*_KEY_FIELDS, "stack_id"):
                stack_pks[(*self._key(stack), stack.stack_id)] = stack.pk
        for row_id, row in changes.items():
            if not row.data:
                continue
            data = dict(row.data)
            absent = _absent(data, ("_intent_id", "_stack_id", *CONTEXT_FIELDS))
            data.pop("_intent_id", None)
            stack_id = data.pop("_stack_id", "") or ""
            values = {name: data.pop(name, None) for name in CONTEXT_FIELDS}
            values["dialog_data"] = values["dialog_data"] or {}
            values["widget_data"] = values["widget_data"] or {}
            values["state"] = values["state"] or ""
            keep.append(
                DialogContext(
                    **_key_values(row_id),
                    intent_id=row_id[-1],
                    stack_key=stack_id,
                    stack_id=stack_pks.get((*row_id[1:6], stack_id)),
                    extra={**data, **absent},
                    **values,
                )
            )
        self._delete(DialogContext, drop, "intent_id")
        if keep:
            DialogContext.objects.bulk_create(
                keep,
                update_conflicts=True,
                unique_fields=[*_KEY_FIELDS, "intent_id"],
                update_fields=[
                    "stack",
                    "stack_key",
                    "extra",
                    "updated_at",
                    *CONTEXT_FIELDS,
                ],
            )

    @staticmethod
    def _write_seen(chats: list[dict[str, Any]]) -> None:
        if not chats:
            return
        fields = [name for name in chats[0] if name not in ("bot_id", "chat_id", "user_id")]
        TelegramChat.objects.bulk_create(
            [TelegramChat(**chat) for chat in chats],
            update_conflicts=True,
            unique_fields=["bot_id", "chat_id", "user_id"],
            update_fields=[*fields, "last_seen"],
        )


class _UnitOfWork:
    """One update's view of one chat: loaded once, written once (see the module docstring)."""

    def __init__(self, database: _Database, scope: ChatScope) -> None:
        self.database = database
        self.scope = scope
        self.task = asyncio.current_task()
        self.rows: dict[RowId, _Row] = {}
        self.original: dict[RowId, _Row] = {}
        self.loaded = False
        self.seen: dict[tuple[int, int, int], dict[str, Any]] = {}
        self.known_chats: dict[tuple[int, int, int], TelegramChat] = {}

    def covers(self, row_id: RowId) -> bool:
        return (row_id[1], row_id[2], row_id[4], row_id[5]) == self.scope

    async def get(self, row_id: RowId) -> _Row:
        if not self.loaded:
            await self.load()
        if row_id not in self.rows:
            # In the scope and not loaded means not stored; outside it, ask the database.
            row = _Row() if self.covers(row_id) else await self._load_one(row_id)
            self.rows[row_id] = row
            self.original[row_id] = copy.deepcopy(row)
        return self.rows[row_id]

    async def _load_one(self, row_id: RowId) -> _Row:
        return await sync_to_async(self.database.load_row)(row_id)

    async def load(self) -> None:
        rows, chats = await sync_to_async(self._load_with_chats)()
        self.rows = rows
        self.original = copy.deepcopy(rows)
        self.known_chats = chats
        self.loaded = True

    def _load_with_chats(self) -> tuple[dict[RowId, _Row], dict]:
        bot_id, chat_id, _thread, _bcid = self.scope
        rows = self.database.load_scope(self.scope)
        chats = {
            (c.bot_id, c.chat_id, c.user_id): c
            for c in TelegramChat.objects.filter(bot_id=bot_id, chat_id=chat_id)
        }
        return rows, chats

    def note_seen(self, values: dict[str, Any]) -> None:
        """Remember the chat/user of this update; written with the update if it changed."""
        self.seen[(values["bot_id"], values["chat_id"], values["user_id"])] = values

    def _seen_changes(self) -> list[dict[str, Any]]:
        changed = []
        now = timezone.now()
        for ident, values in self.seen.items():
            known = self.known_chats.get(ident)
            if (
                known is None
                or known.is_blocked  # they wrote again, so they unblocked the bot
                or now - known.last_seen >= SEEN_REFRESH
                or any(getattr(known, name) != value for name, value in values.items())
            ):
                changed.append({**values, "is_blocked": False})
        return changed

    def changes(self) -> dict[RowId, _Row]:
        return {
            row_id: row
            for row_id, row in self.rows.items()
            if row != self.original.get(row_id)
            or (self.database.data_ttl is not None and row_id[0] == "stack" and row.data)
        }

    async def commit(self) -> None:
        changes = self.changes()
        seen = self._seen_changes()
        if changes or seen:
            known_stacks = {
                row_id[1:]: row.pk
                for row_id, row in self.original.items()
                if row_id[0] == "stack" and row.pk is not None
            }
            await sync_to_async(self.database.write)(changes, seen, known_stacks)


_current_unit: contextvars.ContextVar[_UnitOfWork | None] = contextvars.ContextVar(
    "botdialogs_unit_of_work", default=None
)


def _as_timedelta(value: float | timedelta | None) -> timedelta | None:
    if value is None or isinstance(value, timedelta):
        return value
    return timedelta(seconds=value)


class DjangoStorage(BaseStorage):
    """aiogram FSM storage on the Django ORM, with structured aiogram_dialog tables.

    ``state_ttl`` / ``data_ttl`` (seconds or timedelta) work like RedisStorage's: expired
    values read as empty, and ``manage.py botdialogs_cleanup`` (or the Celery task
    ``botdialogs.tasks.cleanup_expired``) deletes them. Off by default.
    """

    def __init__(
        self,
        *,
        state_ttl: float | timedelta | None = None,
        data_ttl: float | timedelta | None = None,
    ) -> None:
        self.state_ttl = _as_timedelta(state_ttl)
        self.data_ttl = _as_timedelta(data_ttl)
        self._database = _Database(self.state_ttl, self.data_ttl)

    # -- unit of work -----------------------------------------------------------------------
    @asynccontextmanager
    async def unit_of_work(self, key: StorageKey) -> AsyncIterator[_UnitOfWork]:
        """Load the chat of ``key`` once and write this block's changes in one transaction.

        Changes are dropped if the block raises. Nested blocks for the same task reuse the
        outer one.
        """
        outer = self._unit()
        if outer is not None:
            yield outer
            return
        unit = _UnitOfWork(self._database, chat_scope(key))
        token = _current_unit.set(unit)
        try:
            yield unit
            await unit.commit()
        finally:
            _current_unit.reset(token)

    def _unit(self) -> _UnitOfWork | None:
        unit = _current_unit.get()
        # A task started inside an update copies the context but is not part of the update.
        if unit is not None and unit.task is asyncio.current_task():
            return unit
        return None

    async def _get(self, row_id: RowId) -> _Row:
        unit = self._unit()
        if unit is not None:
            return await unit.get(row_id)
        return await sync_to_async(self._database.load_row)(row_id)

    async def _put(self, row_id: RowId, row: _Row) -> None:
        unit = self._unit()
        if unit is not None:
            await unit.get(row_id)  # record the original for change detection
            unit.rows[row_id] = row
            return
        await sync_to_async(self._database.write)({row_id: row}, [], link_contexts=True)

    # -- BaseStorage --------------------------------------------------------------------------
    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        """Store the state as its string (``State.state``); ``None`` clears it."""
        row_id = _row_id("fsm", key)
        current = await self._get(row_id)
        value = state.state if isinstance(state, State) else state
        await self._put(row_id, _Row(state=value, data=current.data, pk=current.pk))

    async def get_state(self, key: StorageKey) -> str | None:
        """The stored state string, or None."""
        return (await self._get(_row_id("fsm", key))).state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        """Replace the data; ``{}`` clears it. Non-JSON values raise UnstorableData now."""
        if not isinstance(data, Mapping):
            raise UnstorableData(f"Data must be a mapping, not {type(data).__name__}")
        value = to_json(data, key)
        kind = _data_kind(key)
        if kind == "stack" and "intents" in value:
            value["_top_state"] = await self._top_state(key, value["intents"])
        row_id = _row_id(kind, key)
        current = await self._get(row_id)
        await self._put(row_id, _Row(state=current.state, data=value, pk=current.pk))

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
        context = await self._get(_row_id("context", context_key))
        return str(context.data.get("state") or "")

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        """A copy of the stored data (``{}`` when there is none)."""
        data = copy.deepcopy((await self._get(_row_id(_data_kind(key), key))).data)
        data.pop("_top_state", None)
        return data

    async def close(self) -> None:
        """Nothing to close: connections belong to Django."""
