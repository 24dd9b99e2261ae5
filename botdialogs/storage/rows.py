"""How aiogram storage keys and data map to table rows, both ways, kind by kind.

A row is named by a :class:`RowKey`; each kind of row (:class:`RowKind`) is one entry of
:data:`ROW_TABLES` (model, name column, load order), and every ``*_values`` (aiogram data
-> column values) has its ``*_row`` (column values -> aiogram data) beside it. Both storage
backends (:mod:`.orm`, :mod:`.postgres`) loop over that table, so they store exactly the
same rows.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from aiogram.fsm.storage.base import StorageKey
from django.apps import apps
from django.db.models import Model

from botdialogs.exceptions import IntentIdCollision, UnstorableData
from botdialogs.storage.jsonvalues import NotJson, json_clone, json_copy

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
# The stack row's copy of its top context's state rides in the data under this name.
TOP_STATE = "_top_state"
#: The key columns every row kind shares (aiogram's StorageKey without the destiny).
KEY_FIELDS = ("bot_id", "chat_id", "user_id", "thread_id", "business_connection_id")
#: The columns that name a chat (what one unit of work loads and one lock serialises).
SCOPE_FIELDS = ("bot_id", "chat_id", "thread_id", "business_connection_id")
#: TelegramChat's key: one row per bot, chat and user.
CHAT_KEY_FIELDS = ("bot_id", "chat_id", "user_id")
#: What an update tells of a chat and its user (TelegramChat's other columns).
CHAT_FIELDS = ("chat_type", "title", "username", "first_name", "last_name", "language_code")
#: What round trip 1 reads of a chat: CHAT_FIELDS and what no update writes, the chat's chosen
#: language and its site user (botdialogs.i18n picks the update's language from them).
CHAT_READ_FIELDS = (*CHAT_FIELDS, "language", "language_source", "site_user_id")


class RowKind(enum.StrEnum):
    """The kinds of rows stored for a chat, one table each (:data:`ROW_TABLES`)."""

    FSM = "fsm"
    STACK = "stack"
    CONTEXT = "context"
    NODE = "node"


class ChatScope(NamedTuple):
    """A chat: what one unit of work loads and one lock serialises (users share it)."""

    bot_id: int
    chat_id: int
    thread_id: int
    business_connection_id: str

    @property
    def lock_name(self) -> str:
        """The chat's lock name: in-process locks, and PostgreSQL's advisory lock id."""
        return f"{self.bot_id}:{self.chat_id}:{self.thread_id}:{self.business_connection_id}"


class RowKey(NamedTuple):
    """The identity of one stored row: its kind, the key columns and its name column.

    ``name`` is the kind's name column (:attr:`RowTable.name_field`): an FSM record's
    destiny, a stack's id, a context's intent id, a node state's router. None parts of an
    aiogram key are stored as 0 and "".
    """

    kind: RowKind
    bot_id: int
    chat_id: int
    user_id: int
    thread_id: int
    business_connection_id: str
    name: str

    @property
    def scope(self) -> ChatScope:
        """The chat the row belongs to."""
        return ChatScope(self.bot_id, self.chat_id, self.thread_id, self.business_connection_id)

    def columns(self) -> dict[str, Any]:
        """The key columns of the row, plus its name column."""
        values: dict[str, Any] = {name: getattr(self, name) for name in KEY_FIELDS}
        values[ROW_TABLES[self.kind].name_field] = self.name
        return values


class ChatIdent(NamedTuple):
    """A TelegramChat row's key (:data:`CHAT_KEY_FIELDS`)."""

    bot_id: int
    chat_id: int
    user_id: int


#: A stack's identity as a context refers to it: the key columns and the stack id.
StackRef = tuple[int, int, int, int, str, str]


@dataclass
class Row:
    """What the storage knows about one key: state, data, and the row's primary key."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    pk: int | None = None

    def copy(self) -> Row:
        """A deep copy (the data is JSON)."""
        return Row(state=self.state, data=json_clone(self.data), pk=self.pk)


#: Reads one row as the storage sees it (in the running unit of work, if any).
RowReader = Callable[[RowKey], Awaitable[Row]]


def chat_scope(key: StorageKey) -> ChatScope:
    """The chat a key belongs to: what one unit of work loads and one lock serialises."""
    return ChatScope(key.bot_id, key.chat_id, key.thread_id or 0, key.business_connection_id or "")


def data_kind(key: StorageKey) -> RowKind:
    """Which kind of row holds the data of ``key``: of the kinds aiogram's destinies reach,
    the one with the longest prefix the destiny starts with (FSM records: every other)."""
    tables = (table for table in ROW_TABLES.values() if table.by_destiny)
    matching = (table for table in tables if key.destiny.startswith(table.prefix))
    return max(matching, key=lambda table: len(table.prefix)).kind


def row_key(kind: RowKind, key: StorageKey, name: str | None = None) -> RowKey:
    """The row of ``kind`` for ``key``; its name is the destiny (less the kind's prefix)
    unless ``name`` is given (a node state's router)."""
    if name is None:
        name = key.destiny.removeprefix(ROW_TABLES[kind].prefix)
    return RowKey(
        kind,
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id or 0,
        key.business_connection_id or "",
        name,
    )


def row_key_of(kind: RowKind, values: Mapping[str, Any]) -> RowKey:
    """The identity of a row read from the table of ``kind``."""
    return RowKey(
        kind,
        values["bot_id"],
        values["chat_id"],
        values["user_id"],
        values["thread_id"],
        values["business_connection_id"],
        values[ROW_TABLES[kind].name_field],
    )


def stack_ref(key: RowKey) -> StackRef:
    """How a context names the stack row ``key``."""
    return (
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id,
        key.business_connection_id,
        key.name,
    )


def stack_ref_of(values: Mapping[str, Any]) -> StackRef:
    """The stack a context's columns (or a stack's) name, as :func:`stack_ref` gives it."""
    name = values["aiogd_stack_id"] if "aiogd_stack_id" in values else values["stack_id"]
    return (
        values["bot_id"],
        values["chat_id"],
        values["user_id"],
        values["thread_id"],
        values["business_connection_id"],
        name,
    )


def to_json(data: Mapping[str, Any], key: StorageKey) -> dict[str, Any]:
    """A deep, JSON-only copy of ``data``; raises UnstorableData naming the key on failure.

    NaN, Infinity and NUL characters are refused here (see :mod:`botdialogs.storage.jsonvalues`),
    not by PostgreSQL at commit, long after the handler that stored them. A stack whose
    intents repeat an id is refused too (:class:`IntentIdCollision`): two dialogs would
    share one context.
    """
    try:
        value = json_copy(dict(data))
    except NotJson as error:
        raise UnstorableData(
            f"Cannot store data for chat {key.chat_id}, user {key.user_id}, destiny "
            f"{key.destiny!r}: {error}. Store JSON values only (convert datetimes to ISO "
            "strings, sets to lists, NaN and Infinity to None or strings)."
        ) from error
    intents = value.get("intents") if key.destiny.startswith(STACK_PREFIX) else None
    counts = Counter(map(str, intents)) if isinstance(intents, list) else Counter()
    repeated = sorted(intent for intent, times in counts.items() if times > 1)
    if repeated:
        raise IntentIdCollision(
            f"Stack {key.destiny!r} of chat {key.chat_id} names intent id(s) {repeated} more "
            "than once: two dialogs would share one context. botdialogs.intent_ids makes ids "
            "unique; something generated ids without it."
        )
    return value


def _with_extra(data: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    extra = dict(extra)
    for name in extra.pop(ABSENT, ()):
        data.pop(name, None)
    data.update(extra)
    return data


def _absent(data: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    missing = [name for name in names if name not in data]
    return {ABSENT: missing} if missing else {}


# -- reading and writing rows, kind by kind --------------------------------------------------
@dataclass
class Reading:
    """What reading a chat's rows knows as it goes, kind after kind in load order."""

    now: datetime
    data_ttl: timedelta | None
    #: Row ids of the stacks read so far that have not expired (their contexts live).
    live_stacks: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Writing:
    """When, and with which expiry, a unit of work writes its rows."""

    now: datetime
    state_ttl: timedelta | None
    data_ttl: timedelta | None


# -- FSM records ----------------------------------------------------------------------------
def fsm_row(values: Mapping[str, Any], reading: Reading) -> Row:
    """An FsmRecord's columns as a Row; expired parts read as empty."""
    now = reading.now
    state = values["state"]
    if values["state_expires_at"] is not None and values["state_expires_at"] <= now:
        state = None
    data = values["data"]
    if values["data_expires_at"] is not None and values["data_expires_at"] <= now:
        data = {}
    return Row(state=state, data=data, pk=values["id"])


def fsm_values(key: RowKey, row: Row, writing: Writing) -> dict[str, Any] | None:
    """FsmRecord columns for a Row, or None when the row is to be deleted."""
    if row.state is None and not row.data:
        return None
    now, state_ttl, data_ttl = writing.now, writing.state_ttl, writing.data_ttl
    return {
        **key.columns(),
        "state": row.state,
        "data": row.data,
        "state_expires_at": now + state_ttl if state_ttl and row.state is not None else None,
        "data_expires_at": now + data_ttl if data_ttl and row.data else None,
        "updated_at": now,
    }


# -- dialog stacks --------------------------------------------------------------------------
def stack_alive(expires_at: datetime | None, now: datetime) -> bool:
    """Whether a DialogStack row that expires at ``expires_at`` has not expired."""
    return expires_at is None or expires_at > now


def stack_row(values: Mapping[str, Any], reading: Reading) -> Row | None:
    """A DialogStack's columns as aiogram_dialog's stack data; None once it expired."""
    if not stack_alive(values["expires_at"], reading.now):
        return None
    reading.live_stacks.add(values["id"])
    data = {"_id": values["stack_id"], "intents": list(values["intents"])}
    data.update({name: values[name] for name in STACK_FIELDS})
    data[TOP_STATE] = values["state"]
    return Row(data=_with_extra(data, values["extra"]), pk=values["id"])


def stack_values(key: RowKey, row: Row, writing: Writing) -> dict[str, Any] | None:
    """DialogStack columns for a Row, or None when the stack is to be deleted."""
    if not row.data:
        return None
    data = dict(row.data)
    absent = _absent(data, ("_id", "intents", *STACK_FIELDS))
    data.pop("_id", None)
    intents = list(data.pop("intents", None) or [])
    columns = {name: data.pop(name, None) for name in STACK_FIELDS}
    columns["last_reply_keyboard"] = bool(columns["last_reply_keyboard"])
    return {
        **key.columns(),
        **columns,
        "intents": intents,
        "depth": len(intents),
        "state": data.pop(TOP_STATE, "") or "",
        "extra": {**data, **absent},
        "expires_at": writing.now + writing.data_ttl if writing.data_ttl else None,
        "updated_at": writing.now,
    }


async def stack_top_state(key: RowKey, data: dict[str, Any], read: RowReader) -> None:
    """A stack keeps its top context's state in a column of its own (who is in which state,
    for the admin and :mod:`botdialogs.background`'s current-dialog query)."""
    if "intents" not in data:
        return
    top = ""
    if data["intents"]:
        context = await read(key._replace(kind=RowKind.CONTEXT, name=data["intents"][-1]))
        top = str(context.data.get("state") or "")
    data[TOP_STATE] = top


# -- dialog contexts ------------------------------------------------------------------------
def context_row(values: Mapping[str, Any], reading: Reading) -> Row | None:
    """A DialogContext's columns as aiogram_dialog's context data; None once it expired.

    A context lives as long as its stack (read before it); one without a stack by its own
    age.
    """
    if values["stack_id"] is not None:
        alive = values["stack_id"] in reading.live_stacks
    else:
        ttl = reading.data_ttl
        alive = ttl is None or values["updated_at"] + ttl > reading.now
    if not alive:
        return None
    data = {
        "_intent_id": values["intent_id"],
        "_stack_id": values["aiogd_stack_id"],
        **{name: values[name] for name in CONTEXT_FIELDS},
    }
    return Row(data=_with_extra(data, values["extra"]), pk=values["id"])


def context_values(key: RowKey, row: Row, writing: Writing) -> dict[str, Any] | None:
    """DialogContext columns for a Row, or None when the context is to be deleted.

    ``stack_id`` (the stack's row id) is left None: each backend finds it from the stack
    the context names (:func:`stack_ref_of`), in the transaction that writes the stack.
    """
    if not row.data:
        return None
    data = dict(row.data)
    absent = _absent(data, ("_intent_id", "_stack_id", *CONTEXT_FIELDS))
    data.pop("_intent_id", None)
    aiogd_stack_id = data.pop("_stack_id", "") or ""
    columns = {name: data.pop(name, None) for name in CONTEXT_FIELDS}
    columns["dialog_data"] = columns["dialog_data"] or {}
    columns["widget_data"] = columns["widget_data"] or {}
    columns["state"] = columns["state"] or ""
    return {
        **key.columns(),
        **columns,
        "aiogd_stack_id": aiogd_stack_id,
        "stack_id": None,
        "extra": {**data, **absent},
        "updated_at": writing.now,
    }


# -- node state (botdialogs.nodes) -----------------------------------------------------------
# A node row's Row: state is the node key, data holds the node's data and its schema version.
NODE_DATA = "data"
NODE_VERSION = "version"


def node_row(values: Mapping[str, Any], reading: Reading) -> Row:
    """A NodeState's columns as a Row (state: the node key)."""
    data = {NODE_DATA: values["data"], NODE_VERSION: values["schema_version"]}
    return Row(state=values["node_key"], data=data, pk=values["id"])


def node_values(key: RowKey, row: Row, writing: Writing) -> dict[str, Any] | None:
    """NodeState columns for a Row, or None when the node state is to be deleted."""
    if row.state is None:
        return None
    return {
        **key.columns(),
        "node_key": row.state,
        "data": row.data.get(NODE_DATA) or {},
        "schema_version": int(row.data.get(NODE_VERSION) or 1),
        "updated_at": writing.now,
    }


# -- the kinds, as data -----------------------------------------------------------------------
@dataclass(frozen=True)
class RowTable:
    """One row kind: its model, its name column, and both ways between columns and a Row.

    The read, write and plan code of both backends loops over :data:`ROW_TABLES`; adding a
    kind is one entry there (and its model).
    """

    kind: RowKind
    #: ``app_label.ModelName``, resolved on use (storage is imported before apps are ready).
    model_label: str
    #: The column that tells the kind's rows of one key apart.
    name_field: str
    #: Stripped from aiogram's destiny to give the name ("" for FSM records and nodes).
    prefix: str
    read: Callable[[Mapping[str, Any], Reading], Row | None]
    write: Callable[[RowKey, Row, Writing], dict[str, Any] | None]
    #: Whether aiogram keys reach the kind by their destiny (a node state's do not).
    by_destiny: bool = True
    #: Adds to data being stored what it copies from other rows (read through the reader).
    complete: Callable[[RowKey, dict[str, Any], RowReader], Awaitable[None]] | None = None

    @property
    def model(self) -> type[Model]:
        """The Django model of the kind's table."""
        return apps.get_model(self.model_label)

    @property
    def table(self) -> str:
        """The kind's table name."""
        return self.model._meta.db_table

    @property
    def unique(self) -> tuple[str, ...]:
        """The columns of the kind's unique key."""
        return (*KEY_FIELDS, self.name_field)


#: Every row kind, in load and write order: a context is read after the stacks (it lives as
#: long as its stack) and written after them (it refers to its stack's row id).
ROW_TABLES: dict[RowKind, RowTable] = {
    table.kind: table
    for table in (
        RowTable(RowKind.FSM, "botdialogs.FsmRecord", "destiny", "", fsm_row, fsm_values),
        RowTable(
            RowKind.STACK,
            "botdialogs.DialogStack",
            "stack_id",
            STACK_PREFIX,
            stack_row,
            stack_values,
            complete=stack_top_state,
        ),
        RowTable(
            RowKind.CONTEXT,
            "botdialogs.DialogContext",
            "intent_id",
            CONTEXT_PREFIX,
            context_row,
            context_values,
        ),
        RowTable(
            RowKind.NODE,
            "botdialogs.NodeState",
            "router",
            "",
            node_row,
            node_values,
            by_destiny=False,
        ),
    )
}


# -- chats ----------------------------------------------------------------------------------
CHAT_MODEL = "botdialogs.TelegramChat"


def chat_changed(
    known: Mapping[str, Any] | None, seen: Mapping[str, Any], refresh_before: datetime
) -> bool:
    """Whether what an update says of a chat/user differs from its stored row."""
    if known is None or known["is_blocked"] != seen.get("is_blocked", False):
        return True
    if known["last_seen"] < refresh_before:
        return True
    return any(known[name] != seen[name] for name in CHAT_FIELDS)


def chat_ident(values: Mapping[str, Any]) -> ChatIdent:
    """The key of a TelegramChat row (or of what an update says of one)."""
    return ChatIdent(*(values[name] for name in CHAT_KEY_FIELDS))


# -- reading a chat -------------------------------------------------------------------------
def scope_rows(
    tables: Mapping[RowKind, Iterable[Mapping[str, Any]]],
    chats: Iterable[Mapping[str, Any]],
    now: datetime,
    data_ttl: timedelta | None,
) -> tuple[dict[RowKey, Row], dict[ChatIdent, dict[str, Any]]]:
    """One chat's table rows as the storage sees them: live rows by key, chat rows by ident.

    ``tables`` holds each kind's rows as read; both backends interpret them here, once.
    """
    reading = Reading(now=now, data_ttl=data_ttl)
    rows: dict[RowKey, Row] = {}
    for kind, table in ROW_TABLES.items():
        for values in tables.get(kind, ()):
            row = table.read(values, reading)
            if row is not None:
                rows[row_key_of(kind, values)] = row
    known = {chat_ident(chat): dict(chat) for chat in chats}
    return rows, known


def single_row(
    kind: RowKind,
    values: Mapping[str, Any] | None,
    now: datetime,
    data_ttl: timedelta | None,
    stack_expires_at: datetime | None = None,
) -> Row:
    """One table row as the storage sees it (empty when absent or expired).

    A context lives as long as its stack: pass the stack's ``expires_at``.
    """
    if values is None:
        return Row()
    reading = Reading(now=now, data_ttl=data_ttl)
    stack_pk = values.get("stack_id") if kind is RowKind.CONTEXT else None
    if stack_pk is not None and stack_alive(stack_expires_at, now):
        reading.live_stacks.add(stack_pk)
    return ROW_TABLES[kind].read(values, reading) or Row()
