"""Telegram's limits, as local Telegram enforces them: message sizes and flood control.

Flood control is off unless a bot's ``rate_limited`` is set (the user API's rate-limits
switch); then sends beyond Telegram's rates answer 429 with ``retry_after``.
"""

from __future__ import annotations

import math

from django.utils import timezone

from botdialogs.localtg.errors import BotApiError
from botdialogs.localtg.models import LocalBot, LocalChat

#: Telegram's longest message text, in characters.
MAX_TEXT_LENGTH = 4096
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
