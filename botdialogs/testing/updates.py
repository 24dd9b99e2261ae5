"""Telegram updates as Telegram sends them, for feeding a webhook or a Dispatcher in a test.

Each builder returns the raw JSON dict (what a webhook receives); :func:`as_update` turns one
into aiogram's :class:`~aiogram.types.Update` for ``Dispatcher.feed_update``. Update and
message ids come from counters of this process, so two builders never repeat an id unless
given one.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiogram.types import Update

_update_ids = itertools.count(1)
_message_ids = itertools.count(1000)


def next_update_id() -> int:
    """A new update id (this process's counter)."""
    return next(_update_ids)


def next_message_id() -> int:
    """A new message id, shared by user messages here and the bot's in ``RecordingSession``
    (one counter, as a Telegram chat numbers both in one sequence)."""
    return next(_message_ids)


def user(user_id: int, first_name: str = "Ann", **fields: Any) -> dict[str, Any]:
    """A Telegram ``User`` (a person, not a bot)."""
    return {"id": user_id, "is_bot": False, "first_name": first_name, **fields}


def message_update(
    chat_id: int,
    text: str,
    user_id: int | None = None,
    *,
    update_id: int | None = None,
    first_name: str = "Ann",
) -> dict[str, Any]:
    """An Update with a text message from user ``user_id`` (default: ``chat_id``) in the
    private chat ``chat_id``."""
    return {
        "update_id": next_update_id() if update_id is None else update_id,
        "message": {
            "message_id": next_message_id(),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private", "first_name": first_name},
            "from": user(user_id or chat_id, first_name, username=first_name.lower()),
            "text": text,
        },
    }


def callback_update(
    chat_id: int,
    data: str,
    message_id: int = 1,
    user_id: int | None = None,
    *,
    update_id: int | None = None,
    first_name: str = "Ann",
) -> dict[str, Any]:
    """An Update with a press of the inline button ``data`` under the bot's message
    ``message_id`` in the private chat ``chat_id``."""
    return {
        "update_id": next_update_id() if update_id is None else update_id,
        "callback_query": {
            "id": str(next_update_id()),
            "chat_instance": "1",
            "from": user(user_id or chat_id, first_name, username=first_name.lower()),
            "message": {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private"},
                "from": {"id": 1, "is_bot": True, "first_name": "Bot"},
                "text": "x",
            },
            "data": data,
        },
    }


def as_update(raw: dict[str, Any]) -> Update:
    """The aiogram :class:`~aiogram.types.Update` of a raw update dict."""
    return Update.model_validate(raw)
