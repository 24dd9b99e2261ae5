"""Telegram users and site accounts: finding the linked account, creating and linking one.

The link is :attr:`TelegramChat.site_user <botdialogs.models.TelegramChat.site_user>`, the
same one deep-link tokens set (:func:`botdialogs.background.link_site_user`). A user who
signs in from a Mini App or the Login Widget may never have written to the bot; their
private chat (whose id is their user id) is recorded then, so the link has a row to live on.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from botdialogs.background import link_site_user
from botdialogs.models import TelegramChat
from botdialogs.webapp.init_data import TelegramUser


def linked_site_user(bot: str, telegram_user: TelegramUser) -> Any | None:
    """The site account linked to ``telegram_user`` for ``bot`` (None: none, or inactive)."""
    from botdialogs.engine.bots import bot_id

    chat = (
        TelegramChat.objects.filter(bot_id=bot_id(bot), user_id=telegram_user.id)
        .exclude(site_user=None)
        .select_related("site_user")
        .order_by("pk")
        .first()
    )
    user = chat.site_user if chat is not None else None
    return user if user is not None and user.is_active else None


def link(bot: str, telegram_user: TelegramUser, user: Any) -> None:
    """Link ``telegram_user``'s chats with ``bot`` to site ``user``, their private chat too."""
    from botdialogs.engine.bots import bot_id

    with transaction.atomic():
        TelegramChat.objects.get_or_create(
            bot_id=bot_id(bot),
            chat_id=telegram_user.id,
            user_id=telegram_user.id,
            defaults={
                "username": telegram_user.username[:64],
                "first_name": telegram_user.first_name[:255],
                "last_name": telegram_user.last_name[:255],
                "language_code": telegram_user.language_code[:16],
            },
        )
        link_site_user(bot, telegram_user.id, user)


def create_linked_user(bot: str, telegram_user: TelegramUser) -> Any:
    """A new site account for ``telegram_user`` (no usable password), linked to them.

    Its username is ``telegram-<user id>``; when that name is taken by someone else's account
    nothing is linked (IntegrityError): an account is never taken over by its name.
    """
    model = get_user_model()
    fields: dict[str, Any] = {model.USERNAME_FIELD: f"telegram-{telegram_user.id}"}
    for name in ("first_name", "last_name"):
        if any(f.name == name for f in model._meta.get_fields()):
            fields[name] = getattr(telegram_user, name)[:150]
    with transaction.atomic():
        user = model._default_manager.create_user(**fields)
        user.set_unusable_password()
        user.save()
        link(bot, telegram_user, user)
    return user


def site_user_for(bot: str, telegram_user: TelegramUser, *, create: bool) -> Any | None:
    """The linked account, or (``create``) a new linked one; None when there is none."""
    user = linked_site_user(bot, telegram_user)
    if user is not None or not create:
        return user
    try:
        return create_linked_user(bot, telegram_user)
    except IntegrityError:
        # A concurrent sign-in created it first, or the name belongs to another account.
        return linked_site_user(bot, telegram_user)
