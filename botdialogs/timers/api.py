"""Scheduling and cancelling dialog timers: sync for site code, async for handlers.

A timer is a background action (:mod:`botdialogs.background`) stored as a
:class:`~botdialogs.models.DialogTimer` row, due at a time. Where it is written decides when
it exists:

- :func:`aschedule` / :func:`acancel` inside an update's handler: added to the update's unit
  of work (:meth:`botdialogs.storage.UnitOfWork.add_write`), so they commit with the dialog
  state in round trip 2, and vanish with it when the handler raised;
- the same outside an update: written at once;
- :func:`schedule` / :func:`cancel` in sync code: written after the surrounding transaction
  commits (``transaction.on_commit``), never for a rolled-back one.

Every input is checked first: a bad one raises :class:`BadTimer` and stores nothing.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from botdialogs.background.actions import build_action, resolve_state, validate_action
from botdialogs.exceptions import BadBackgroundAction
from botdialogs.storage import DjangoStorage, ExtraWrite
from botdialogs.timers.wakeups import announce, notify_statement

#: Longest key accepted (the column's length).
KEY_MAX_LENGTH = 128


class BadTimer(BadBackgroundAction):
    """A timer that cannot be scheduled: bad time, action, bot or key (nothing stored)."""


def build_timer(
    bot: str,
    user_id: int,
    chat_id: int,
    action: str | dict[str, Any],
    *,
    at: datetime | None = None,
    after: timedelta | float | None = None,
    key: str | None = None,
    **parameters: Any,
) -> dict[str, Any]:
    """A checked timer row (column values), not stored; see :func:`schedule` for arguments."""
    now = timezone.now()
    due_at = _due_at(at, after, now)
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= KEY_MAX_LENGTH):
        raise BadTimer(f"key must be a non-empty string of at most {KEY_MAX_LENGTH} characters")
    timer_id = uuid.uuid4().hex
    try:
        if isinstance(action, str):
            checked = build_action(action, bot, user_id, chat_id, **parameters)
        elif isinstance(action, dict) and not parameters:
            checked = validate_action(action)
            if "state" in checked:
                resolve_state(checked["bot"], checked["state"])
            target = (checked["bot"], checked["user_id"], checked["chat_id"])
            if target != (bot, user_id, chat_id):
                raise BadTimer(
                    f"The action is for {target}, the timer for {(bot, user_id, chat_id)}"
                )
        else:
            raise BadTimer("action is 'start', 'switch_to', 'update', 'done' or an action dict")
    except BadTimer:
        raise
    except BadBackgroundAction as error:
        raise BadTimer(str(error)) from error
    # The timer's id is the action's: it is what turns "fired" with the state.
    checked["id"] = timer_id
    return {
        "id": timer_id,
        "bot_name": bot,
        "user_id": user_id,
        "chat_id": chat_id,
        "key": key or "",
        "due_at": due_at,
        "action": checked,
        "created_at": now,
    }


def _due_at(at: datetime | None, after: timedelta | float | None, now: datetime) -> datetime:
    if (at is None) == (after is None):
        raise BadTimer("Give exactly one of at= (an aware datetime) or after= (a delay)")
    if at is not None:
        if not isinstance(at, datetime):
            raise BadTimer(f"at must be a datetime, not {type(at).__name__}")
        if timezone.is_naive(at):
            raise BadTimer("at must be an aware datetime (a naive one has no time zone)")
        # A time in the past is due at once: it fires at the next tick.
        return at
    if isinstance(after, bool) or not isinstance(after, timedelta | int | float):
        raise BadTimer(f"after must be a timedelta or seconds, not {after!r}")
    delay = after if isinstance(after, timedelta) else timedelta(seconds=after)
    return now + delay


# -- writes: SQL for the PostgreSQL storage backend, the ORM for the other; same effect ------------


def _table() -> str:
    from botdialogs.models import DialogTimer

    return DialogTimer._meta.db_table


def _replace_sql(values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return (
        f"UPDATE {_table()} SET status = 'cancelled', finished_at = %s, last_error = %s "
        "WHERE bot_name = %s AND chat_id = %s AND key = %s AND status = 'pending'",
        (values["created_at"], "replaced", values["bot_name"], values["chat_id"], values["key"]),
    )


def _insert_sql(values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return (
        f"INSERT INTO {_table()} (id, bot_name, user_id, chat_id, key, due_at, action, status, "
        "attempts, last_error, leased_until, created_at, finished_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, 'pending', 0, '', NULL, %s, NULL)",
        (
            values["id"],
            values["bot_name"],
            values["user_id"],
            values["chat_id"],
            values["key"],
            values["due_at"],
            json.dumps(values["action"]),
            values["created_at"],
        ),
    )


#: Tries of a keyed insert that met another scheduler's timer with the same key.
KEYED_INSERT_TRIES = 3


def _store_sync(values: dict[str, Any]) -> None:
    """Insert the timer, cancelling the pending one with the same key (ORM, one transaction).

    Two schedulers of one key at the same moment both find no pending timer to replace, and
    the second insert meets the first's under the one-pending-per-key constraint: it tries
    again, and then replaces it (the last one scheduled wins, as in sequence).
    """
    for attempt in range(KEYED_INSERT_TRIES):
        try:
            _store_once(values)
            return
        except IntegrityError:
            if not values["key"] or attempt == KEYED_INSERT_TRIES - 1:
                raise


def _store_once(values: dict[str, Any]) -> None:
    from botdialogs.models import DialogTimer

    with transaction.atomic():
        if values["key"]:
            _pending_by_key(values["bot_name"], values["chat_id"], values["key"]).update(
                status=DialogTimer.Status.CANCELLED,
                finished_at=values["created_at"],
                last_error="replaced",
            )
        DialogTimer.objects.create(**values)
        announce(values["due_at"])  # firers hear of it when this commits


def _store_write(values: dict[str, Any]) -> ExtraWrite:
    statements = (_replace_sql(values),) if values["key"] else ()
    return ExtraWrite(
        statements=(*statements, _insert_sql(values), notify_statement(values["due_at"])),
        orm=lambda: _store_sync(values),
    )


def _pending_by_key(bot: str, chat_id: int, key: str) -> Any:
    from botdialogs.models import DialogTimer

    return DialogTimer.objects.filter(
        bot_name=bot, chat_id=chat_id, key=key, status=DialogTimer.Status.PENDING
    )


def _cancel_target(
    timer_id: str | None, bot: str | None, chat_id: int | None, key: str | None
) -> dict[str, Any]:
    """The columns (and values) that pick the timer(s) to cancel, status aside."""
    if timer_id is not None and (bot, chat_id, key) == (None, None, None):
        if not isinstance(timer_id, str):
            raise BadTimer(f"timer_id must be a string, not {timer_id!r}")
        return {"id": timer_id}
    if timer_id is None and None not in (bot, chat_id, key):
        return {"bot_name": bot, "chat_id": chat_id, "key": key}
    raise BadTimer("Cancel by timer_id, or by bot, chat_id and key")


def _cancel_sync(target: dict[str, Any]) -> int:
    from botdialogs.models import DialogTimer

    return DialogTimer.objects.filter(status=DialogTimer.Status.PENDING, **target).update(
        status=DialogTimer.Status.CANCELLED, finished_at=timezone.now(), last_error=""
    )


def _cancel_write(target: dict[str, Any]) -> ExtraWrite:
    # Column names come from _cancel_target, never from the caller.
    where = " AND ".join(f"{column} = %s" for column in target)
    sql = (
        f"UPDATE {_table()} SET status = 'cancelled', finished_at = %s, last_error = '' "
        f"WHERE {where} AND status = 'pending'"
    )
    return ExtraWrite(
        statements=((sql, (timezone.now(), *target.values())),),
        orm=lambda: _cancel_sync(target),
    )


# -- the public calls ---------------------------------------------------------------------------


def schedule(
    bot: str,
    user_id: int,
    chat_id: int,
    action: str | dict[str, Any],
    *,
    at: datetime | None = None,
    after: timedelta | float | None = None,
    key: str | None = None,
    **parameters: Any,
) -> str:
    """Schedule ``action`` for the chat at ``at`` (aware) or ``after`` (seconds or timedelta).

    ``action`` is ``"start"``, ``"switch_to"``, ``"update"`` or ``"done"`` with the arguments
    of :mod:`botdialogs.background` (``state``, ``data``, ``mode``, ``show_mode``, ``result``,
    ``stack_id``, ``thread_id``, ``business_connection_id``), or a dict from
    :func:`botdialogs.background.build_action`. ``key`` (per bot and chat) replaces the
    pending timer with the same key. Written after the surrounding transaction commits;
    returns the timer's id. Raises :class:`BadTimer` for bad input.
    """
    values = build_timer(bot, user_id, chat_id, action, at=at, after=after, key=key, **parameters)
    transaction.on_commit(lambda: _store_sync(values))
    return str(values["id"])


async def aschedule(
    bot: str,
    user_id: int,
    chat_id: int,
    action: str | dict[str, Any],
    *,
    at: datetime | None = None,
    after: timedelta | float | None = None,
    key: str | None = None,
    **parameters: Any,
) -> str:
    """:func:`schedule` for async code: in a handler, it commits with the update's state."""
    values = build_timer(bot, user_id, chat_id, action, at=at, after=after, key=key, **parameters)
    unit = DjangoStorage.running_unit()
    if unit is not None:
        unit.add_write(_store_write(values))
    else:
        await sync_to_async(_store_sync)(values)
    return str(values["id"])


def cancel(
    timer_id: str | None = None,
    *,
    bot: str | None = None,
    chat_id: int | None = None,
    key: str | None = None,
) -> None:
    """Cancel a pending timer by id, or by ``bot``, ``chat_id`` and ``key``; after commit.

    A timer that fired already stays fired; cancelling one that no longer waits does nothing.
    """
    target = _cancel_target(timer_id, bot, chat_id, key)
    transaction.on_commit(lambda: _cancel_sync(target))


async def acancel(
    timer_id: str | None = None,
    *,
    bot: str | None = None,
    chat_id: int | None = None,
    key: str | None = None,
) -> None:
    """:func:`cancel` for async code: in a handler, it commits with the update's state."""
    target = _cancel_target(timer_id, bot, chat_id, key)
    unit = DjangoStorage.running_unit()
    if unit is not None:
        unit.add_write(_cancel_write(target))
    else:
        await sync_to_async(_cancel_sync)(target)
