"""The bots' menu of commands (``setMyCommands``) in every language of the site.

``BOTDIALOGS['BOT_COMMANDS']`` names a list of ``(command, description)`` pairs (or a
callable given the bot's name that returns one); the descriptions are ``gettext_lazy``
strings, read under ``translation.override`` once per language of ``settings.LANGUAGES``.
Telegram shows a user the list of their app's language (a two-letter ISO 639-1 code), and
the list set without a language to everyone else: that one is in ``LANGUAGE_CODE``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiogram.types import BotCommand
from django.conf import settings
from django.utils import translation
from django.utils.module_loading import import_string

from botdialogs.conf import get_settings
from botdialogs.engine.bots import get_bot

CommandList = Sequence[tuple[str, Any]]


def commands_for(bot_name: str) -> CommandList:
    """The configured ``(command, description)`` pairs of bot ``bot_name`` (may be empty)."""
    path = get_settings().bot_commands
    if path is None:
        return ()
    found: CommandList | Callable[[str], CommandList] = import_string(path)
    return found(bot_name) if callable(found) else found


def telegram_languages() -> dict[str, str]:
    """Telegram's two-letter code -> the site language that speaks for it (first one wins:
    "pt-br" and "pt" share Telegram's "pt")."""
    found: dict[str, str] = {}
    for code, _name in settings.LANGUAGES:
        found.setdefault(code.split("-")[0].split("_")[0].lower()[:2], code)
    return found


def translated_commands(pairs: CommandList, language: str) -> list[BotCommand]:
    """``pairs`` as Bot API commands, their descriptions in ``language``."""
    with translation.override(language):
        return [BotCommand(command=command, description=str(text)) for command, text in pairs]


async def set_commands(bot_name: str) -> dict[str, list[BotCommand]]:
    """Call ``setMyCommands`` for each language and once without one; returns what was set
    by Telegram language code ("" for the default list)."""
    pairs = commands_for(bot_name)
    bot = get_bot(bot_name)
    sent: dict[str, list[BotCommand]] = {}
    languages = {"": settings.LANGUAGE_CODE, **telegram_languages()}
    for telegram_code, language in languages.items():
        commands = translated_commands(pairs, language)
        if commands:
            await bot.set_my_commands(commands, language_code=telegram_code or None)
        else:
            await bot.delete_my_commands(language_code=telegram_code or None)
        sent[telegram_code] = commands
    return sent
