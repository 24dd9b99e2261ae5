"""In-memory fakes for fast unit tests only (the real paths are tested against local Telegram)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetMe,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import Chat, Message, User

_update_ids = itertools.count(1)
_message_ids = itertools.count(1000)


class RecordingSession(BaseSession):
    """Answers Bot API calls from memory and records them (no HTTP)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []

    async def make_request(
        self, bot: Bot, method: TelegramMethod[Any], timeout: int | None = None
    ) -> Any:
        self.calls.append(method)
        if isinstance(method, GetMe):
            return User(id=bot.id, is_bot=True, first_name="Bot", username="test_bot")
        if isinstance(method, SendMessage | EditMessageText | EditMessageReplyMarkup):
            chat_id = int(method.chat_id)
            message_id = getattr(method, "message_id", None) or next(_message_ids)
            return Message(
                message_id=message_id,
                date=0,
                chat=Chat(id=chat_id, type="private"),
                from_user=User(id=bot.id, is_bot=True, first_name="Bot"),
                text=getattr(method, "text", None) or "",
                reply_markup=getattr(method, "reply_markup", None),
            )
        if isinstance(method, AnswerCallbackQuery | DeleteMessage):
            return True
        # An answer made up for a method nobody modelled would let a test pass on nonsense.
        raise NotImplementedError(f"RecordingSession does not answer {type(method).__name__}")

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any) -> AsyncGenerator[bytes, None]:
        yield b""

    def texts(self) -> list[str]:
        return [c.text for c in self.calls if isinstance(c, SendMessage | EditMessageText)]


def message_update(chat_id: int, text: str, user_id: int | None = None) -> dict[str, Any]:
    """A raw Telegram Update with a private text message."""
    user_id = user_id or chat_id
    return {
        "update_id": next(_update_ids),
        "message": {
            "message_id": next(_message_ids),
            "date": 0,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"},
            "text": text,
        },
    }


def callback_update(
    chat_id: int, data: str, message_id: int = 1, user_id: int | None = None
) -> dict[str, Any]:
    """A raw Telegram Update with a button press."""
    user_id = user_id or chat_id
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(next(_update_ids)),
            "chat_instance": "1",
            "from": {"id": user_id, "is_bot": False, "first_name": "Ann", "username": "ann"},
            "message": {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                "text": "x",
            },
            "data": data,
        },
    }
