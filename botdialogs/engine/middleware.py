"""The FSM middleware botdialogs puts on each Dispatcher, in place of aiogram's.

:class:`TransactionalFSMMiddleware` is where one update's storage work begins. Like
aiogram's FSM middleware it serialises the chat before reading state; with DjangoStorage it
does so by opening the chat's unit of work (:meth:`botdialogs.storage.DjangoStorage.unit_of_work`:
chat lock, claim and reads in round trip 1, writes and COMMIT in round trip 2), with the
claim its caller passed in the event data under :data:`CLAIM`:

- a webhook update: ``dispatcher.feed_update(bot, update, **{CLAIM: claim})``
  (:mod:`botdialogs.http.webhook`);
- a background action or a timer firing: aiogram_dialog's background event, sent by
  :class:`botdialogs.background.manager.BackgroundManager` with the claim in the data of
  ``propagate_event``.

It also records who the update came from, and takes the claim of an update that has no
chat (an inline query) in a unit of work of its own.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.dispatcher.middlewares.user_context import EVENT_CONTEXT_KEY, EventContext
from aiogram.fsm.context import FSMContext
from aiogram.fsm.middleware import FSMContextMiddleware
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.types import TelegramObject
from aiogram_dialog.api.entities import DialogUpdate

from botdialogs.engine.update_context import handling
from botdialogs.storage import Claim, DjangoStorage, UnitOfWork

logger = logging.getLogger("botdialogs")

#: The key of the event data that carries the work's claim to this middleware.
CLAIM = "botdialogs_claim"


class TransactionalFSMMiddleware(FSMContextMiddleware):
    """aiogram's FSM middleware, with the update's storage work in one unit of work."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        bot: Bot = data["bot"]
        claim: Claim | None = data.pop(CLAIM, None)
        context = self._fsm_context(bot, event, data)
        data["fsm_storage"] = self.storage
        storage = self.storage if isinstance(self.storage, DjangoStorage) else None
        if context is None:
            if storage is None or claim is None:
                return await handler(event, data)
            async with storage.unit_of_work(None, claim):
                return await handler(event, data)
        # With DjangoStorage the unit of work is the chat lock (and aiogram_dialog's stack
        # lock inside the update passes through it); other storages (Redis, memory) lock
        # with their event isolation, and the caller records the claim after the work.
        lock: AbstractAsyncContextManager[UnitOfWork | None] = (
            storage.unit_of_work(context.key, claim)
            if storage is not None
            else self.events_isolation.lock(key=context.key)
        )
        async with lock as unit:
            with handling():
                if unit is not None and not isinstance(event, DialogUpdate):
                    _note_seen(unit, bot, event, data)
                data.update({"state": context, "raw_state": await context.get_state()})
                return await handler(event, data)

    def _fsm_context(
        self, bot: Bot, event: TelegramObject, data: dict[str, Any]
    ) -> FSMContext | None:
        if isinstance(event, DialogUpdate):
            # aiogram's user context middleware does not know aiogram_dialog's background
            # events: their chat is in the event.
            dialog_event = event.aiogd_update
            return self.resolve_context(
                bot,
                chat_id=dialog_event.chat.id,
                user_id=dialog_event.from_user.id,
                thread_id=dialog_event.thread_id,
                business_connection_id=dialog_event.business_connection_id,
            )
        return self.resolve_event_context(bot, data)


def _note_seen(unit: UnitOfWork, bot: Bot, event: TelegramObject, data: dict[str, Any]) -> None:
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
        # A code with NUL is malformed: kept not at all, never read as another language.
        "language_code": "" if "\x00" in (user.language_code or "") else user.language_code,
    }
    unit.note_seen(
        {
            "bot_id": bot.id,
            "chat_id": chat.id,
            "user_id": user.id,
            # Cut to the column now, without NUL (PostgreSQL's text refuses it): a value that
            # does not fit must never fail the commit.
            **{
                name: (value or "").replace("\x00", "")[: _column_length(name)]
                for name, value in names.items()
            },
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
