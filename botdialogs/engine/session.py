"""The Bot API client session of botdialogs' bots: aiogram's aiohttp session, minus a cost.

aiogram checks every Bot API answer against ``Response[T]`` for the method's result type.
pydantic caches parametrized generic models only weakly, so with nothing else holding
``Response[Message]`` it can be looked up and rebuilt again and again (measured in
bench/RESULTS.md). :class:`BotSession` keeps each one it used alive, so every later check
is a cache hit; the answers are the same.
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import Response, TelegramMethod

#: Response[T] for every result type seen in this process: strong references for pydantic.
_response_types: dict[Any, Any] = {}


class BotSession(AiohttpSession):
    """aiogram's AiohttpSession that keeps the Response[T] models it checks answers with."""

    def check_response(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Response[Any]:
        """aiogram's check, with ``Response[T]`` kept alive (see the module docstring)."""
        returning = method.__returning__
        if returning not in _response_types:
            _response_types[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
