"""Delivering updates from local Telegram to a bot's webhook, as Telegram does.

The target is the URL the bot set with setWebhook, else this server's own
``/bots/<name>/webhook/`` with the bot's configured secret. A reply the bot put in the
webhook response (``{"method": ...}``) is carried out like any other Bot API call.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from asgiref.sync import sync_to_async
from django.urls import reverse

from botdialogs.conf import get_settings
from botdialogs.engine.local_api import base_url
from botdialogs.localtg import botapi
from botdialogs.localtg.accounts import local_bot

logger = logging.getLogger("botdialogs.localtg")

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TIMEOUT = aiohttp.ClientTimeout(total=60)


def webhook_target(bot_name: str) -> tuple[str, str, list[str] | None]:
    """Where the bot's updates go: (url, secret token, allowed update types or None)."""
    bot = local_bot(bot_name)
    if bot.webhook_set:
        return bot.webhook_url, bot.webhook_secret, bot.allowed_updates
    path = reverse("botdialogs:webhook", kwargs={"name": bot_name})
    return f"{base_url()}{path}", get_settings().bot(bot_name).webhook_secret, None


async def deliver(bot_name: str, update: dict[str, Any]) -> int:
    """POST ``update`` to the bot's webhook; returns the HTTP status (0: not delivered)."""
    url, secret, allowed = await sync_to_async(webhook_target)(bot_name)
    kind = next(key for key in update if key != "update_id")
    if allowed and kind not in allowed:
        return 0
    headers = {SECRET_HEADER: secret} if secret else {}
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as session,
        session.post(url, json=update, headers=headers) as response,
    ):
        status = response.status
        body = await response.read()
    reply = _json_or_none(body) if status == 200 else None
    if isinstance(reply, dict) and isinstance(reply.get("method"), str):
        await _carry_out(bot_name, reply)
    elif status != 200:
        logger.warning("Webhook of bot %r answered %s to update %s", bot_name, status, update)
    return status


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        # Telegram ignores a webhook response it cannot read; so do we.
        return None


async def _carry_out(bot_name: str, reply: dict[str, Any]) -> None:
    from botdialogs.engine.bots import bot_token

    params = {key: value for key, value in reply.items() if key != "method"}
    answer = await sync_to_async(botapi.call)(bot_token(bot_name), reply["method"], params)
    if not answer["ok"]:
        logger.warning("Webhook reply %s of bot %r failed: %s", reply["method"], bot_name, answer)
