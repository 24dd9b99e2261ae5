"""Telegram's limits, as local Telegram enforces them: sizes, button data, callback query
answers and flood control.

Sizes are counted as Telegram counts them: text and captions in UTF-16 code units after
formatting is parsed (an emoji outside the BMP is two), ``callback_data`` in bytes of UTF-8.
Each refusal answers with Telegram's own code and description. Flood control is off unless a
bot's ``rate_limited`` is set (the user API's rate-limits switch); then sends beyond
Telegram's rates answer 429 with ``retry_after``.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.utils import timezone

from botdialogs.localtg.errors import (
    BUTTON_DATA_INVALID,
    CAPTION_TOO_LONG,
    QUERY_INVALID,
    TEXT_TOO_LONG,
    BotApiError,
)
from botdialogs.localtg.formatting import utf16_length
from botdialogs.localtg.models import LocalBot, LocalCallbackQuery, LocalChat

#: Telegram's longest message text, in UTF-16 code units (after entities are parsed).
MAX_TEXT_LENGTH = 4096
#: Telegram's longest media caption, in UTF-16 code units.
MAX_CAPTION_LENGTH = 1024
#: An inline button's callback_data: 1 to 64 bytes of UTF-8.
MAX_CALLBACK_DATA_BYTES = 64
#: How long a callback query can be answered. Telegram does not document it (bots see "query
#: is too old" some seconds after the press); 15 s leaves room for a slow test machine.
CALLBACK_QUERY_TIMEOUT = timedelta(seconds=15)


def check_text_length(text: str) -> None:
    """400 "message is too long" for a text over MAX_TEXT_LENGTH UTF-16 code units."""
    if utf16_length(text) > MAX_TEXT_LENGTH:
        raise BotApiError(400, TEXT_TOO_LONG)


def check_caption_length(caption: str) -> None:
    """400 "message caption is too long" for a caption over MAX_CAPTION_LENGTH units."""
    if utf16_length(caption) > MAX_CAPTION_LENGTH:
        raise BotApiError(400, CAPTION_TOO_LONG)


def check_reply_markup(markup: Any) -> None:
    """400 BUTTON_DATA_INVALID when an inline button's callback_data is empty or over 64 bytes."""
    if not isinstance(markup, dict):
        return
    for row in markup.get("inline_keyboard") or []:
        for button in row if isinstance(row, list) else []:
            if not isinstance(button, dict) or "callback_data" not in button:
                continue
            size = len(str(button["callback_data"]).encode("utf-8"))
            if not 1 <= size <= MAX_CALLBACK_DATA_BYTES:
                raise BotApiError(400, BUTTON_DATA_INVALID)


def check_answerable(query: LocalCallbackQuery | None) -> LocalCallbackQuery:
    """The query, if it can still be answered: unknown, answered or too old is a 400."""
    if query is None or query.answered:
        raise BotApiError(400, QUERY_INVALID)
    if timezone.now() - query.created_at > CALLBACK_QUERY_TIMEOUT:
        raise BotApiError(400, QUERY_INVALID)
    return query


# Token buckets: Telegram lets a chat burst a little over 1 message/s, a bot ~30 messages/s.
CHAT_RATE, CHAT_BURST = 1.0, 3.0
BOT_RATE, BOT_BURST = 30.0, 30.0


def _take_token(holder: LocalBot | LocalChat, rate: float, burst: float) -> int | None:
    """Spend one send from ``holder``'s bucket; the seconds to wait if it is empty."""
    now = timezone.now()
    tokens = holder.bucket_tokens
    if holder.bucket_updated is not None:
        tokens = min(burst, tokens + (now - holder.bucket_updated).total_seconds() * rate)
    if tokens < 1:
        return max(1, math.ceil((1 - tokens) / rate))
    holder.bucket_tokens = tokens - 1
    holder.bucket_updated = now
    holder.save(update_fields=["bucket_tokens", "bucket_updated"])
    return None


def check_rate(bot: LocalBot, chat: LocalChat) -> None:
    """Spend one send of the bot's and the chat's budget; 429 when either is spent."""
    if not bot.rate_limited:
        return
    locked_bot = LocalBot.objects.select_for_update().get(pk=bot.pk)
    for holder, rate, burst in ((locked_bot, BOT_RATE, BOT_BURST), (chat, CHAT_RATE, CHAT_BURST)):
        wait = _take_token(holder, rate, burst)
        if wait is not None:
            raise BotApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
