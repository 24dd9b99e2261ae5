"""From a site account to its Telegram chats.

:attr:`TelegramChat.site_user <botdialogs.models.TelegramChat.site_user>` ties the two. Set it
with :func:`link_site_user` (from the admin, or a bot handler), typically through a deep
link: the site shows ``https://t.me/<bot username>?start=<link_token(user)>``, the user
taps it, and the bot's ``/start <token>`` handler calls::

    try:
        user = await sync_to_async(user_for_link_token)(token)
    except BadLinkToken as error:  # forged, or expired (LinkTokenExpired)
        await message.answer(str(error))
    else:
        await sync_to_async(link_site_user)(bot_name, message.from_user.id, user)

A token is signed with Django's :class:`~django.core.signing.TimestampSigner` (the site's
``SECRET_KEY``) and expires after ``BOTDIALOGS['LINK_TOKEN_MAX_AGE']`` seconds: a link that
leaked (a forwarded message, a screenshot) links nobody a day later.
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.db.models import QuerySet

from botdialogs.conf import get_settings
from botdialogs.exceptions import BadLinkToken, LinkTokenExpired
from botdialogs.models import TelegramChat

_SALT = "botdialogs.background.link_token"
#: What Telegram accepts as a /start parameter.
_START_PARAMETER = re.compile(r"[A-Za-z0-9_-]{1,64}")


def link_site_user(bot: str, telegram_user_id: int, user: Any) -> int:
    """Tie every chat of ``telegram_user_id`` with bot ``bot`` to site ``user``.

    Returns the number of chats linked (0 when the user has not talked to the bot yet).
    ``user=None`` unlinks.
    """
    from botdialogs.engine.bots import bot_id

    return TelegramChat.objects.filter(bot_id=bot_id(bot), user_id=telegram_user_id).update(
        site_user=user
    )


def link_token(user: Any) -> str:
    """A ``/start`` parameter naming ``user`` (Telegram allows 64 of ``A-Za-z0-9_-``).

    ``TimestampSigner`` writes ``pk:timestamp:signature``; Telegram has no ``:``, so the two
    separators become ``-`` (the pk and the base62 timestamp hold none; the signature may,
    and comes last). A pk of more than 13 characters, or with ``-``, does not fit.
    """
    value = str(user.pk)
    token = signing.TimestampSigner(salt=_SALT).sign(value).replace(":", "-")
    if "-" in value or ":" in value or not _START_PARAMETER.fullmatch(token):
        raise ValueError(f"A link token for pk {value!r} would not fit Telegram's 64 characters")
    return token


def user_for_link_token(token: str) -> Any | None:
    """The user a :func:`link_token` names (None if that user was deleted since).

    Raises :class:`~botdialogs.exceptions.LinkTokenExpired` for a token older than
    ``LINK_TOKEN_MAX_AGE``, and :class:`~botdialogs.exceptions.BadLinkToken` for one this
    site did not make or that was changed.
    """
    max_age = get_settings().link_token_max_age
    signed = (token or "").replace("-", ":", 2)  # back to pk:timestamp:signature
    try:
        value = signing.TimestampSigner(salt=_SALT).unsign(signed, max_age=max_age)
    except signing.SignatureExpired:
        raise LinkTokenExpired(
            f"This link has expired (links work for {max_age} seconds): ask the site for a new one."
        ) from None
    except signing.BadSignature:
        raise BadLinkToken("This link was not made by this site, or it was changed.") from None
    return get_user_model()._default_manager.filter(pk=value).first()


def for_site_user(user: Any, bot: str | None = None) -> QuerySet[TelegramChat]:
    """The chats linked to site ``user`` (of bot ``bot``, or of every bot), blocked excluded."""
    from botdialogs.engine.bots import bot_id

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
    from botdialogs.background.from_sync import update
    from botdialogs.engine.bots import bot_name_for_id

    ids = []
    for chat in for_site_user(user, bot):
        name = bot_name_for_id(chat.bot_id)
        if name is None:
            continue  # a bot no longer configured
        ids.append(update(name, chat.user_id, chat.chat_id, data, show_mode=show_mode))
    return ids
