"""How aiogram storage keys and data map to table rows, both ways.

Every ``*_values`` (aiogram data -> column values) has its ``*_row`` (column values ->
aiogram data) beside it; both database engines (:mod:`.orm`, :mod:`.postgres`) use these,
so they store exactly the same rows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram.fsm.storage.base import StorageKey

from botdialogs.exceptions import IntentIdCollision, UnstorableData
from botdialogs.storage.jsonvalues import NotJson, json_copy

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
KEY_FIELDS = ("bot_id", "chat_id", "user_id", "thread_id", "business_connection_id")
NAME_FIELD = {"fsm": "destiny", "stack": "stack_id", "context": "intent_id", "node": "router"}
CHAT_FIELDS = ("chat_type", "title", "username", "first_name", "last_name", "language_code")
#: What round trip 1 reads of a chat: CHAT_FIELDS and what no update writes, the chat's chosen
#: language and its site user (botdialogs.i18n picks the update's language from them).
CHAT_READ_FIELDS = (*CHAT_FIELDS, "language", "language_source", "site_user_id")

ChatScope = tuple[int, int, int, str]  # bot_id, chat_id, thread_id, business_connection_id
# kind, bot_id, chat_id, user_id, thread_id, business_connection_id, destiny/stack/intent id
RowId = tuple[str, int, int, int, int, str, str]
ChatIdent = tuple[int, int, int]  # bot_id, chat_id, user_id


@dataclass
class Row:
    """What the storage knows about one key: state, data, and the row's primary key."""

    state: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    pk: int | None = None


def chat_scope(key: StorageKey) -> ChatScope:
    """The chat a key belongs to: what one unit of work loads and one lock serialises."""
    return (key.bot_id, key.chat_id, key.thread_id or 0, key.business_connection_id or "")


def data_kind(key: StorageKey) -> str:
    """Which table holds the data of ``key``: "stack", "context" or "fsm"."""
    if key.destiny.startswith(STACK_PREFIX):
        return "stack"
    if key.destiny.startswith(CONTEXT_PREFIX):
        return "context"
    return "fsm"


def row_id(kind: str, key: StorageKey) -> RowId:
    """The identity of the row of ``kind`` for ``key`` (None parts stored as 0 / "")."""
    name = key.destiny
    if kind == "stack":
        name = name[len(STACK_PREFIX) :]
    elif kind == "context":
        name = name[len(CONTEXT_PREFIX) :]
    return (
        kind,
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id or 0,
        key.business_connection_id or "",
        name,
    )


def in_scope(row: RowId, scope: ChatScope) -> bool:
    """Whether the row belongs to the chat ``scope``."""
    return (row[1], row[2], row[4], row[5]) == scope


def key_values(row: RowId) -> dict[str, Any]:
    """The key columns of a row, plus its name column."""
    values = dict(zip(KEY_FIELDS, row[1:6], strict=True))
    values[NAME_FIELD[row[0]]] = row[6]
    return values


def row_id_of(kind: str, values: Mapping[str, Any]) -> RowId:
    """The identity of a row read from the table of ``kind``."""
    return (kind, *(values[name] for name in KEY_FIELDS), values[NAME_FIELD[kind]])


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


# -- FSM records ----------------------------------------------------------------------------
def fsm_row(values: Mapping[str, Any], now: datetime) -> Row:
    """An FsmRecord's columns as a Row; expired parts read as empty."""
    state = values["state"]
    if values["state_expires_at"] is not None and values["state_expires_at"] <= now:
        state = None
    data = values["data"]
    if values["data_expires_at"] is not None and values["data_expires_at"] <= now:
        data = {}
    return Row(state=state, data=data, pk=values["id"])


def fsm_values(
    row_id_: RowId, row: Row, now: datetime, state_ttl: timedelta | None, data_ttl: timedelta | None
) -> dict[str, Any] | None:
    """FsmRecord columns for a Row, or None when the row is to be deleted."""
    if row.state is None and not row.data:
        return None
    return {
        **key_values(row_id_),
        "state": row.state,
        "data": row.data,
        "state_expires_at": now + state_ttl if state_ttl and row.state is not None else None,
        "data_expires_at": now + data_ttl if data_ttl and row.data else None,
        "updated_at": now,
    }


# -- dialog stacks --------------------------------------------------------------------------
def stack_alive(values: Mapping[str, Any], now: datetime) -> bool:
    """Whether a DialogStack row has not expired."""
    return values["expires_at"] is None or values["expires_at"] > now


def stack_row(values: Mapping[str, Any]) -> Row:
    """A DialogStack's columns as aiogram_dialog's stack data."""
    data = {"_id": values["stack_id"], "intents": list(values["intents"])}
    data.update({name: values[name] for name in STACK_FIELDS})
    data[TOP_STATE] = values["state"]
    return Row(data=_with_extra(data, values["extra"]), pk=values["id"])


def stack_values(
    row_id_: RowId, row: Row, now: datetime, data_ttl: timedelta | None
) -> dict[str, Any] | None:
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
        **key_values(row_id_),
        **columns,
        "intents": intents,
        "depth": len(intents),
        "state": data.pop(TOP_STATE, "") or "",
        "extra": {**data, **absent},
        "expires_at": now + data_ttl if data_ttl else None,
        "updated_at": now,
    }


# -- dialog contexts ------------------------------------------------------------------------
def context_alive(
    values: Mapping[str, Any], live_stacks: set[int], now: datetime, data_ttl: timedelta | None
) -> bool:
    """A context lives as long as its stack; one without a stack by its own age."""
    if values["stack_id"] is not None:
        return values["stack_id"] in live_stacks
    return data_ttl is None or values["updated_at"] + data_ttl > now


def context_row(values: Mapping[str, Any]) -> Row:
    """A DialogContext's columns as aiogram_dialog's context data."""
    data = {
        "_intent_id": values["intent_id"],
        "_stack_id": values["aiogd_stack_id"],
        **{name: values[name] for name in CONTEXT_FIELDS},
    }
    return Row(data=_with_extra(data, values["extra"]), pk=values["id"])


def context_stack_ref(row_id_: RowId, row: Row) -> tuple:
    """The key of the stack a context belongs to, as (bot, chat, user, thread, bcid, stack id)."""
    return (*row_id_[1:6], row.data.get("_stack_id", "") or "")


def context_values(row_id_: RowId, row: Row, now: datetime, stack_pk: int | None) -> dict | None:
    """DialogContext columns for a Row, or None when the context is to be deleted."""
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
        **key_values(row_id_),
        **columns,
        "aiogd_stack_id": aiogd_stack_id,
        "stack_id": stack_pk,
        "extra": {**data, **absent},
        "updated_at": now,
    }


# -- node state (botdialogs.nodes) -----------------------------------------------------------
# A node row's Row: state is the node key, data holds the node's data and its schema version.
NODE_DATA = "data"
NODE_VERSION = "version"


def node_row(values: Mapping[str, Any]) -> Row:
    """A NodeState's columns as a Row (state: the node key)."""
    data = {NODE_DATA: values["data"], NODE_VERSION: values["schema_version"]}
    return Row(state=values["node_key"], data=data, pk=values["id"])


def node_values(row_id_: RowId, row: Row, now: datetime) -> dict[str, Any] | None:
    """NodeState columns for a Row, or None when the node state is to be deleted."""
    if row.state is None:
        return None
    return {
        **key_values(row_id_),
        "node_key": row.state,
        "data": row.data.get(NODE_DATA) or {},
        "schema_version": int(row.data.get(NODE_VERSION) or 1),
        "updated_at": now,
    }


# -- chats ----------------------------------------------------------------------------------
def chat_changed(
    known: Mapping[str, Any] | None, seen: Mapping[str, Any], refresh_before: datetime
) -> bool:
    """Whether what an update says of a chat/user differs from its stored row."""
    if known is None or known["is_blocked"] != seen.get("is_blocked", False):
        return True
    if known["last_seen"] < refresh_before:
        return True
    return any(known[name] != seen[name] for name in CHAT_FIELDS)


# -- reading a chat -------------------------------------------------------------------------
def scope_rows(
    fsm: Iterable[Mapping[str, Any]],
    stacks: Iterable[Mapping[str, Any]],
    contexts: Iterable[Mapping[str, Any]],
    chats: Iterable[Mapping[str, Any]],
    now: datetime,
    data_ttl: timedelta | None,
    nodes: Iterable[Mapping[str, Any]] = (),
) -> tuple[dict[RowId, Row], dict[ChatIdent, dict[str, Any]]]:
    """One chat's table rows as the storage sees them: live rows by id, chat rows by ident.

    Both engines read the same columns and interpret them here, once.
    """
    rows: dict[RowId, Row] = {}
    for values in fsm:
        rows[row_id_of("fsm", values)] = fsm_row(values, now)
    live: set[int] = set()
    for values in stacks:
        if stack_alive(values, now):
            live.add(values["id"])
            rows[row_id_of("stack", values)] = stack_row(values)
    for values in contexts:
        if context_alive(values, live, now, data_ttl):
            rows[row_id_of("context", values)] = context_row(values)
    for values in nodes:
        rows[row_id_of("node", values)] = node_row(values)
    known = {(c["bot_id"], c["chat_id"], c["user_id"]): dict(c) for c in chats}
    return rows, known


def single_row(
    kind: str,
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
    if kind == "fsm":
        return fsm_row(values, now)
    if kind == "node":
        return node_row(values)
    if kind == "stack":
        return stack_row(values) if stack_alive(values, now) else Row()
    live = set()
    if values["stack_id"] is not None and stack_alive({"expires_at": stack_expires_at}, now):
        live.add(values["stack_id"])
    return context_row(values) if context_alive(values, live, now, data_ttl) else Row()
