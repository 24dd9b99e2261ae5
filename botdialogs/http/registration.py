"""Registering a bot's webhook with Telegram, and long polling for development.

What the management commands ``setwebhook``, ``deletewebhook``, ``webhookinfo`` and
``runbot`` call.
"""

from __future__ import annotations

from typing import Any

from aiogram.types import Update

from botdialogs.conf import get_settings
from botdialogs.engine.bots import bot_scope, get_bot, get_dispatcher
from botdialogs.http.update_types import RELIED_ON
from botdialogs.storage import DjangoStorage


def allowed_updates(bot_name: str) -> list[str]:
    """The update types to ask for: ``ALLOWED_UPDATES``, else what the bot's router handles;
    with DjangoStorage also the types botdialogs relies on itself (``RELIED_ON``: a bot
    asking for ``message`` alone would never hear that a user blocked it)."""
    configured = get_settings().bot(bot_name).allowed_updates
    dispatcher = get_dispatcher(bot_name)
    if configured is not None:
        kinds = list(configured)
    else:
        used = dispatcher.resolve_used_update_types()
        # aiogram_dialog registers its own "aiogd_update" event: not a type Telegram knows.
        kinds = [kind for kind in used if kind in Update.model_fields and kind != "update_id"]
    # Only DjangoStorage's unit of work notes chats (TelegramChat.is_blocked).
    if isinstance(dispatcher.fsm.storage, DjangoStorage):
        kinds += [kind for kind in RELIED_ON if kind not in kinds]
    return kinds


async def set_webhook(bot_name: str, url: str, drop_pending_updates: bool = False) -> bool:
    """Point Telegram at ``url`` for this bot, with its secret and allowed updates."""
    bot = get_bot(bot_name)
    return await bot.set_webhook(
        url,
        secret_token=get_settings().bot(bot_name).webhook_secret or None,
        allowed_updates=allowed_updates(bot_name),
        drop_pending_updates=drop_pending_updates,
    )


async def delete_webhook(bot_name: str, drop_pending_updates: bool = False) -> bool:
    """Stop Telegram's deliveries to this bot's webhook."""
    return await get_bot(bot_name).delete_webhook(drop_pending_updates=drop_pending_updates)


async def webhook_info(bot_name: str) -> dict[str, Any]:
    """Telegram's getWebhookInfo for this bot, as a plain dict."""
    info = await get_bot(bot_name).get_webhook_info()
    return info.model_dump(exclude_none=True)


async def run_polling(bot_name: str) -> None:
    """Long polling for development: delete the webhook, then poll until interrupted."""
    async with bot_scope():
        bot = get_bot(bot_name)
        await bot.delete_webhook()
        await get_dispatcher(bot_name).start_polling(
            bot, allowed_updates=allowed_updates(bot_name), close_bot_session=False
        )
