"""Recovery handlers: known failures turned into a short answer instead of an error.

- a redelivered update or repeated background action (:class:`AlreadyProcessed`): logged;
- a stored state that no longer exists in code (:class:`UnknownState`, after a deploy
  renamed it): the user's stack is reset with a short message;
- a press on a button whose dialog is gone (:class:`UnknownIntent`): a callback answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent
from aiogram_dialog import DialogManager
from aiogram_dialog.api.exceptions import OutdatedIntent, UnknownIntent, UnknownState
from django.utils import translation
from django.utils.translation import gettext

from botdialogs.conf import get_settings
from botdialogs.i18n.middleware import LANGUAGE_KEY
from botdialogs.storage.claims import AlreadyProcessed

logger = logging.getLogger("botdialogs")


@contextmanager
def users_language(data: dict[str, Any]) -> Iterator[None]:
    """The update's language around an error handler.

    aiogram runs error handlers outside the update's middlewares (so outside
    ``LanguageMiddleware``'s override); the language it chose is still in the data.
    """
    language = data.get(LANGUAGE_KEY)
    if language is None:
        yield
        return
    with translation.override(language.code):
        yield


async def on_already_processed(event: ErrorEvent) -> None:
    """A redelivered update or a repeated background action: acknowledged, not handled."""
    logger.info("Skipped: %s", event.exception)


async def on_unknown_state(
    event: ErrorEvent, bot: Bot, dialog_manager: DialogManager | None = None, **data: Any
) -> None:
    """A stored state this code no longer has: reset the stack and tell the user."""
    logger.warning(
        "Resetting dialog stack of chat %s (bot %s): %s", _chat_id(event), bot.id, event.exception
    )
    if dialog_manager is not None:
        await dialog_manager.reset_stack(remove_keyboard=False)
    callback = event.update.callback_query
    if callback is not None:
        await callback.answer()
    chat_id = _chat_id(event)
    if chat_id is not None:
        with users_language(data):
            await bot.send_message(chat_id, gettext(get_settings().stale_state_message))


async def on_unknown_intent(event: ErrorEvent, bot: Bot, **data: Any) -> None:
    """A press on a button of a dialog that is gone: answer it instead of failing."""
    logger.info(
        "Old button pressed in chat %s (bot %s): %s", _chat_id(event), bot.id, event.exception
    )
    callback = event.update.callback_query
    if callback is not None:
        with users_language(data):
            await callback.answer(gettext(get_settings().old_button_answer))


def _chat_id(event: ErrorEvent) -> int | None:
    update = event.update
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None


def install(dispatcher: Dispatcher) -> None:
    """Register the recovery handlers on the Dispatcher's errors observer."""
    dispatcher.errors.register(on_already_processed, ExceptionTypeFilter(AlreadyProcessed))
    dispatcher.errors.register(on_unknown_state, ExceptionTypeFilter(UnknownState))
    dispatcher.errors.register(
        on_unknown_intent, ExceptionTypeFilter(UnknownIntent, OutdatedIntent)
    )
