"""The FSM middleware botdialogs puts on each Dispatcher, in place of aiogram's.

:class:`TransactionalFSMMiddleware` replaces aiogram's FSM middleware. Like aiogram's, it
takes the chat's event-isolation lock before reading state; with DjangoStorage that lock is
the storage's unit of work (two round trips, one transaction, the update's claim committed
with its state). It also records who the update came from, and takes the claim of an update
that has no chat (an inline query) in a unit of work of its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.types import TelegramObject
from aiogram_dialog.api.entities import DialogUpdate

from botdialogs.engine.update_context import handling
from botdialogs.storage import DjangoStorage
from botdialogs.storage.claims import take_pending

logger = logging.getLogger("botdialogs")


class TransactionalFSMMiddleware(FSMContextMiddleware):
    """aiogram's FSM middleware, with the update's storage work in one unit of work."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        bot: Bot = data["bot"]
        if isinstance(event, DialogUpdate):
            # aiogram's user context middleware does not know aiogram_dialog's background
            # events: their chat is in the event. Lock it here, so the event's claim (a
            # background action's id) commits with the chat's state.
            dialog_event = event.aiogd_update
            context = self.resolve_context(
                bot,
                chat_id=dialog_event.chat.id,
                user_id=dialog_event.from_user.id,
                thread_id=dialog_event.thread_id,
                business_connection_id=dialog_event.business_connection_id,
            )
        else:
            context = self.resolve_event_context(bot, data)
        data["fsm_storage"] = self.storage
        storage = self.storage if isinstance(self.storage, DjangoStorage) else None
        if context is None:
            claim = take_pending() if storage is not None else None
            if claim is None:
                return await handler(event, data)
            async with storage.unit_of_work(None, claim):  # type: ignore[union-attr]
                return await handler(event, data)
        async with self.events_isolation.lock(key=context.key):
            with handling():
                # Joins the unit the lock opened (or opens one under another isolation).
                scope = storage.unit_of_work(context.key) if storage else nullcontext()
                async with scope as unit:
                    if unit is not None and not isinstance(event, DialogUpdate):
                        _note_seen(unit, bot, event, data)
                    data.update({"state": context, "raw_state": await context.get_state()})
                    return await handler(event, data)


def _note_seen(unit: Any, bot: Bot, event: TelegramObject, data: dict[str, Any]) -> None:
    event_context: EventContext | None = data.get(EVENT_CONTEXT_KEY)
    if event_context is None or event_context.chat is None or event_context.user is None:
        return
    chat, user = event_context.chat, event_context.user
    names = {
        "chat_type": chat.type,
        "title": chat.title,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "language_code": user.language_code,
    }
    unit.note_seen(
        {
            "bot_id": bot.id,
            "chat_id": chat.id,
            "user_id": user.id,
            # Cut to the column now: a value that does not fit must never fail the commit.
            **{name: (value or "")[: _column_length(name)] for name, value in names.items()},
            "is_blocked": _blocks_the_bot(event),
        }
    )


@functools.cache
def _column_length(name: str) -> int:
    from django.db.models import Field

    from botdialogs.models import TelegramChat

    field = TelegramChat._meta.get_field(name)
    assert isinstance(field, Field)  # a column, never a reverse relation
    return field.max_length or 255


def _blocks_the_bot(event: TelegramObject) -> bool:
    """True for the update Telegram sends when a user blocks the bot in their private chat;
    any other update from them (unblocking included) means they can be written to."""
    member = getattr(event, "my_chat_member", None)
    return (
        member is not None
        and member.chat.type == "private"
        and member.new_chat_member.status == "kicked"
    )


def install(dispatcher: Dispatcher, storage: BaseStorage, isolation: BaseEventIsolation) -> None:
    """Swap in the transactional FSM middleware."""
    dispatcher.update.outer_middleware.unregister(dispatcher.fsm)
    dispatcher.fsm = TransactionalFSMMiddleware(storage=storage, events_isolation=isolation)
    dispatcher.update.outer_middleware(dispatcher.fsm)
