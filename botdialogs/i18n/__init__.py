"""Dialogs in each user's language, with Django's own translations.

- :mod:`.languages`: which language a chat is spoken to in, and where that came from;
- :mod:`.middleware`: every update, background action, timer firing and node step runs
  under ``translation.override(<the chat's language>)``; :func:`set_language` for a
  handler where the user picks one;
- :mod:`.texts`: :class:`Translated`, a text widget that translates at render time.

Bot commands per language: ``manage.py setcommands`` (:mod:`botdialogs.engine.bot_commands`).
"""

from botdialogs.i18n.languages import (
    BadLanguage,
    ChatLanguage,
    LanguageSource,
    chat_language,
    set_chat_language,
    supported_language,
)
from botdialogs.i18n.middleware import LanguageMiddleware, set_language, speaking
from botdialogs.i18n.texts import Translated

__all__ = [
    "BadLanguage",
    "ChatLanguage",
    "LanguageMiddleware",
    "LanguageSource",
    "Translated",
    "chat_language",
    "set_chat_language",
    "set_language",
    "speaking",
    "supported_language",
]
