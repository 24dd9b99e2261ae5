"""Telegram's error answers, as local Telegram gives them: a code and Telegram's description.

The descriptions are Telegram's own words (bots and libraries match on them, e.g. aiogram's
``TelegramBadRequest`` carries the description as its message).
"""

from __future__ import annotations

from typing import Any

from botdialogs.exceptions import BotDialogsError

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
EDIT_NOT_FOUND = "Bad Request: message to edit not found"
CANT_BE_EDITED = "Bad Request: message can't be edited"


class BotApiError(BotDialogsError):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def as_json(self) -> dict[str, Any]:
        """The error as Telegram spells it."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body
