"""Which language a chat is spoken to in, and where that choice came from.

In order (the first that names a language of ``settings.LANGUAGES`` wins):

1. the linked site user's: ``BOTDIALOGS['SITE_USER_LANGUAGE']``, a callable given the pk of
   :attr:`TelegramChat.site_user <botdialogs.models.TelegramChat.site_user>`;
2. the chat's own :attr:`~botdialogs.models.TelegramChat.language` (chosen in the bot, by
   site code or in the admin);
3. the ``language_code`` of the user's Telegram app, mapped onto ``settings.LANGUAGES`` as
   Django's ``LocaleMiddleware`` maps ``Accept-Language`` ("de-AT" finds "de");
4. ``settings.LANGUAGE_CODE``.

A code that is malformed, too long or not offered by the site is skipped, never an error.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.module_loading import import_string

from botdialogs.conf import get_settings
from botdialogs.exceptions import BotDialogsError
from botdialogs.models import LANGUAGE_MAX_LENGTH, LanguageChosenBy, TelegramChat

#: Longer codes are not looked at: a BCP 47 tag a site could list is far shorter.
LONGEST_CODE = 35


class BadLanguage(BotDialogsError, ValueError):
    """A language the site does not offer (not in ``settings.LANGUAGES``): nothing stored."""


class LanguageSource(enum.StrEnum):
    """Where the language an update runs in came from."""

    SITE_USER = "site user"
    USER = "chosen in the bot"
    ADMIN = "set by an admin"
    SITE = "set by the site"
    TELEGRAM = "Telegram app"
    DEFAULT = "site default"


_CHOSEN_BY: dict[str, LanguageSource] = {
    LanguageChosenBy.USER: LanguageSource.USER,
    LanguageChosenBy.ADMIN: LanguageSource.ADMIN,
    LanguageChosenBy.SITE: LanguageSource.SITE,
}


@dataclass(frozen=True)
class ChatLanguage:
    """A chat's language (a code of ``settings.LANGUAGES``, or LANGUAGE_CODE) and its source."""

    code: str
    source: LanguageSource

    def __str__(self) -> str:
        return f"{self.code} ({self.source})"


def supported_language(code: object) -> str | None:
    """``code`` as one of the site's languages ("de-AT" -> "de"), or None.

    None for anything that is not a short language code the site offers: "xx-YY", 300
    characters, "", None. Never raises.
    """
    if not isinstance(code, str) or not code or len(code) > LONGEST_CODE:
        return None
    try:
        found = translation.get_supported_language_variant(code.replace("_", "-").lower())
    except LookupError:
        return None
    return found if len(found) <= LANGUAGE_MAX_LENGTH else None


def default_language() -> ChatLanguage:
    """The site's ``LANGUAGE_CODE``."""
    return ChatLanguage(settings.LANGUAGE_CODE, LanguageSource.DEFAULT)


def site_user_language(site_user_id: Any) -> str | None:
    """What ``BOTDIALOGS['SITE_USER_LANGUAGE']`` says for a site user (sync: it may query).

    None when there is no hook, no user, or the hook's answer is not a site language.
    """
    hook = get_settings().site_user_language
    if hook is None or site_user_id is None:
        return None
    return supported_language(import_string(hook)(site_user_id))


def resolve(
    chat: Mapping[str, Any] | None,
    telegram_code: str | None = None,
    site_user_code: str | None = None,
) -> ChatLanguage:
    """The language for a chat row's values (``language``, ``language_source``,
    ``language_code``) in the order of the module docstring.

    ``telegram_code`` is the code an update carries (else the stored one is used);
    ``site_user_code`` is :func:`site_user_language`'s answer, looked up by the caller.
    """
    chat = chat or {}
    if site_user_code is not None:
        return ChatLanguage(site_user_code, LanguageSource.SITE_USER)
    chosen = supported_language(chat.get("language"))
    if chosen is not None:
        source = _CHOSEN_BY.get(chat.get("language_source") or "", LanguageSource.SITE)
        return ChatLanguage(chosen, source)
    telegram = supported_language(telegram_code or chat.get("language_code"))
    if telegram is not None:
        return ChatLanguage(telegram, LanguageSource.TELEGRAM)
    return default_language()


def chat_language(chat: TelegramChat) -> ChatLanguage:
    """The language of a stored chat (sync: it may ask the site user hook)."""
    values = {
        "language": chat.language,
        "language_source": chat.language_source,
        "language_code": chat.language_code,
    }
    return resolve(values, site_user_code=site_user_language(chat.site_user_id))


def checked_choice(code: str) -> str:
    """``code`` as the site language to store for a chat ("" clears the choice).

    Raises :class:`BadLanguage` for a code the site does not offer.
    """
    if code == "":
        return ""
    found = supported_language(code)
    if found is None:
        offered = ", ".join(code for code, _name in settings.LANGUAGES)
        raise BadLanguage(f"{code!r} is not one of the site's languages ({offered})")
    return found


def set_chat_language(
    chat: TelegramChat, code: str, chosen_by: LanguageChosenBy = LanguageChosenBy.SITE
) -> ChatLanguage:
    """Store ``code`` as the chat's language (sync: site code, the admin); its new language.

    ``code`` "" clears the choice: the site user's, Telegram's or the default applies again.
    To show it, update the chat's dialog (``botdialogs.background.update``).
    """
    chat.language = checked_choice(code)
    chat.language_source = chosen_by if chat.language else ""
    chat.save(update_fields=["language", "language_source"])
    return chat_language(chat)


def stored_chat_language(bot_id: int, chat_id: int, user_id: int | None) -> ChatLanguage | None:
    """The language of a stored chat by its key (None when the bot never saw it); one query.

    ``user_id`` None: the chat's first user (a group's events may name the chat only).
    """
    chats = TelegramChat.objects.filter(bot_id=bot_id, chat_id=chat_id)
    if user_id is not None:
        chats = chats.filter(user_id=user_id)
    chat = chats.order_by("pk").first()
    return chat_language(chat) if chat is not None else None
