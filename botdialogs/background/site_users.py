"""From a site account to its Telegram chats.

:attr:`TelegramChat.site_user <botdialogs.models.TelegramChat.site_user>` ties the two. Set it
with :func:`link_site_user` (from the admin, or a bot handler), typically through a deep
link: the site shows ``https://t.me/<bot username>?start=<link_token(user)>``, the user
taps it, and the bot's ``/start <token>`` handler calls::

    user = await sync_to_async(user_for_link_token)(token)
    await sync_to_async(link_site_user)(bot_name, message.from_user.id, user)
"""

from __future__ import annotations

import base64
import hmac
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.crypto import salted_hmac

from botdialogs.models import TelegramChat

_SALT = "botdialogs.background.link_token"


def link_site_user(bot: str, telegram_user_id: int, user: Any) -> int:
    """Tie every chat of ``telegram_user_id`` with bot ``bot`` to site ``user``.

    Returns the number of chats linked (0 when the user has not talked to the bot yet).
    ``user=None`` unlinks.
    """
    from botdialogs.bots import bot_id

    return TelegramChat.objects.filter(bot_id=bot_id(bot), user_id=telegram_user_id).update(
        site_user=user
    )


def _signature(value: str) -> str:
    digest = salted_hmac(_SALT, value, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def link_token(user: Any) -> str:
    """A ``/start`` parameter naming ``user`` (Telegram allows 64 of ``A-Za-z0-9_-``)."""
    value = str(user.pk)
    return f"{value}-{_signature(value)}"


def user_for_link_token(token: str) -> Any | None:
    """The user a :func:`link_token` names, or None for a forged or malformed token."""
    value, _, signature = (token or "").rpartition("-")
    if not value or not hmac.compare_digest(signature, _signature(value)):
        return None
    return get_user_model()._default_manager.filter(pk=value).first()


def for_site_user(user: Any, bot: str | None = None) -> QuerySet[TelegramChat]:
    """The chats linked to site ``user`` (of bot ``bot``, or of every bot), blocked excluded."""
    from botdialogs.bots import bot_id

    chats = TelegramChat.objects.filter(site_user=user, is_blocked=False)
    if bot is not None:
        chats = chats.filter(bot_id=bot_id(bot))
    return chats.order_by("pk")


def update_for_user(
    user: Any,
    data: dict[str, Any] | None = None,
    *,
    bot: str | None = None,
    show_mode: Any = None,
) -> list[str]:
    """``background.update`` every chat of site ``user``; returns the action ids."""
    from botdialogs.background import update
    from botdialogs.bots import bot_name_for_id

    ids = []
    for chat in for_site_user(user, bot):
        name = bot_name_for_id(chat.bot_id)
        if name is None:
            continue  # a bot no longer configured
        ids.append(update(name, chat.user_id, chat.chat_id, data, show_mode=show_mode))
    return ids
