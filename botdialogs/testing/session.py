"""A Bot API session that answers from memory and records every call: unit tests of bot dialogs
without any server (the real paths are tested against local Telegram).

    with recording_bots() as bot_api:
        ...  # feed updates; every Bot the registry builds talks to bot_api
    assert bot_api.texts() == ["Hello!"]
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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

from botdialogs.conf import BotSettings
from botdialogs.engine import bots
from botdialogs.testing.updates import next_message_id


class RecordingSession(BaseSession):
    """Answers Bot API calls from memory and records them in :attr:`calls` (no HTTP).

    It answers the methods bot dialogs use (getMe, sendMessage, editMessageText,
    editMessageReplyMarkup, answerCallbackQuery, deleteMessage) and refuses any other.
    """

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
            if method.chat_id is None:  # an inline message's edit: no chat to answer with
                raise NotImplementedError("RecordingSession does not edit inline messages")
            chat_id = int(method.chat_id)
            message_id = getattr(method, "message_id", None) or next_message_id()
            return Message(
                message_id=message_id,
                date=datetime.fromtimestamp(0, UTC),
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
        """The texts the bot sent or edited in, in order."""
        sent = (c for c in self.calls if isinstance(c, SendMessage | EditMessageText))
        return [c.text for c in sent if c.text is not None]


@contextmanager
def recording_bots(session: RecordingSession | None = None) -> Iterator[RecordingSession]:
    """Every Bot the registry builds in the block talks to ``session`` (a new one by default),
    which is yielded; the real sessions come back afterwards.

    Through the public seam :func:`botdialogs.engine.bots.set_session_factory`.
    """
    recording = session or RecordingSession()

    def factory(settings: BotSettings) -> BaseSession:
        return recording

    previous = bots.set_session_factory(factory)
    try:
        yield recording
    finally:
        bots.set_session_factory(previous)
