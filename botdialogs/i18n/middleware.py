"""Every update in its user's language: an aiogram middleware around the handlers.

:class:`LanguageMiddleware` sits on the Dispatcher's ``update`` observer, inside the FSM
middleware, so it sees every update, every background action and timer firing (aiogram_dialog
sends those as ``DialogUpdate`` events through the same Dispatcher) and the node steps they
run. It picks the chat's language (:mod:`.languages`) from the chat row the unit of work read
in round trip 1, so it adds no database round trip, and runs the handlers under Django's
``translation.override``: ``gettext``, lazy strings and :class:`~.texts.Translated` widgets
render in that language.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware, Dispatcher
from aiogram.types import TelegramObject
from aiogram_dialog import DialogManager
from aiogram_dialog.api.entities import DialogUpdate
from asgiref.sync import sync_to_async
from django.utils import translation

from botdialogs.conf import get_settings
from botdialogs.i18n.languages import (
    ChatLanguage,
    checked_choice,
    resolve,
    site_user_language,
)
from botdialogs.models import LanguageChosenBy, TelegramChat
from botdialogs.storage import DjangoStorage, ExtraWrite
from botdialogs.storage.rows import ChatIdent

#: Middleware data keys: the update's :class:`ChatLanguage` and its :class:`UpdateChat`.
LANGUAGE_KEY = "botdialogs_language"
CHAT_KEY = "botdialogs_chat"

_SET_LANGUAGE_SQL = (
    f"UPDATE {TelegramChat._meta.db_table} SET language = %s, language_source = %s "
    "WHERE bot_id = %s AND chat_id = %s AND user_id = %s"
)


@dataclass(frozen=True)
class UpdateChat:
    """Whom an update is from: the chat row's key and the code their Telegram app sent."""

    bot_id: int
    chat_id: int
    user_id: int
    telegram_code: str | None = None


class LanguageMiddleware(BaseMiddleware):
    """Runs the update's handlers under ``translation.override(<the chat's language>)``."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat = _update_chat(event, data)
        language = await language_for(chat) if chat else None
        if language is None:  # no user at all (a channel post): the site's default
            return await handler(event, data)
        data[LANGUAGE_KEY], data[CHAT_KEY] = language, chat
        with translation.override(language.code):
            return await handler(event, data)


def _update_chat(event: TelegramObject, data: dict[str, Any]) -> UpdateChat | None:
    bot = data["bot"]
    if isinstance(event, DialogUpdate):
        # A background action or timer: no Telegram app spoke, the stored code stands.
        dialog_event = event.aiogd_update
        return UpdateChat(bot.id, dialog_event.chat.id, dialog_event.from_user.id)
    user = data.get("event_from_user")
    if user is None:
        return None
    chat = data.get("event_chat")
    chat_id = chat.id if chat is not None else 0  # an inline query: no chat row to read
    return UpdateChat(bot.id, chat_id, user.id, user.language_code)


async def _chat_row(chat: UpdateChat) -> dict[str, Any] | None:
    if not chat.chat_id:
        return None
    unit = DjangoStorage.running_unit()
    ident = ChatIdent(chat.bot_id, chat.chat_id, chat.user_id)
    if unit is not None:
        return unit.known_chats.get(ident)  # read with the chat in round trip 1
    # Another storage (Redis, memory) keeps no chat rows in its unit: one query.
    rows = TelegramChat.objects.filter(
        bot_id=chat.bot_id, chat_id=chat.chat_id, user_id=chat.user_id
    ).values("language", "language_source", "language_code", "site_user_id")
    found = await rows.afirst()
    return dict(found) if found is not None else None


async def language_for(chat: UpdateChat) -> ChatLanguage:
    """The language of ``chat`` for the running update (see :mod:`.languages`)."""
    row = await _chat_row(chat)
    site_user_code = None
    if get_settings().site_user_language and row and row.get("site_user_id") is not None:
        site_user_code = await sync_to_async(site_user_language)(row["site_user_id"])
    return resolve(row, chat.telegram_code, site_user_code)


@asynccontextmanager
async def speaking(bot_id: int, chat_id: int, user_id: int) -> AsyncIterator[ChatLanguage]:
    """Run the block in the chat's language (work that does not pass the Dispatcher)."""
    language = await language_for(UpdateChat(bot_id, chat_id, user_id))
    with translation.override(language.code):
        yield language


async def set_language(manager: DialogManager | dict[str, Any], code: str) -> ChatLanguage:
    """Store the language the user chose in the bot and switch the running update to it.

    From a handler (``manager`` or the handler's middleware data). The choice commits with
    the update's state (no extra round trip); ``code`` "" forgets it. aiogram_dialog then
    renders the current window in the new language. Raises
    :class:`~.languages.BadLanguage` for a language the site does not offer.
    """
    data = manager if isinstance(manager, dict) else manager.middleware_data
    chat: UpdateChat = data[CHAT_KEY]
    choice = checked_choice(code)
    values = {"language": choice, "language_source": LanguageChosenBy.USER if choice else ""}
    where = {"bot_id": chat.bot_id, "chat_id": chat.chat_id, "user_id": chat.user_id}
    unit = DjangoStorage.running_unit()
    if unit is not None:
        params = (values["language"], values["language_source"], *where.values())
        unit.add_write(
            ExtraWrite(
                statements=((_SET_LANGUAGE_SQL, params),),
                orm=lambda: TelegramChat.objects.filter(**where).update(**values),
            )
        )
        row = unit.known_chats.get(ChatIdent(chat.bot_id, chat.chat_id, chat.user_id))
        if row is not None:
            row.update(values)
    else:
        await TelegramChat.objects.filter(**where).aupdate(**values)
    language = await language_for(chat)
    if (
        unit is None
        or unit.known_chats.get(ChatIdent(chat.bot_id, chat.chat_id, chat.user_id)) is None
    ):
        # The chat's row is written later in this update (its first): resolve from the choice.
        language = resolve(values, chat.telegram_code) if choice else language
    data[LANGUAGE_KEY] = language
    translation.activate(language.code)  # the override around the update restores it after
    return language


def install(dispatcher: Dispatcher) -> None:
    """Put :class:`LanguageMiddleware` on ``dispatcher`` (after the FSM middleware)."""
    dispatcher.update.outer_middleware(LanguageMiddleware())
