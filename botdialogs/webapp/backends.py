"""A Django authentication backend for Telegram users (Mini Apps and the Login Widget).

Add ``"botdialogs.webapp.backends.TelegramBackend"`` to ``AUTHENTICATION_BACKENDS``; then
``django.contrib.auth.authenticate(request, telegram_bot=..., telegram_user=...)`` with a
*verified* :class:`~botdialogs.webapp.init_data.TelegramUser` gives the linked site user,
or a new linked one when ``BOTDIALOGS['WEBAPP_CREATE_USERS']`` is on.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.http import HttpRequest

from botdialogs.conf import get_settings
from botdialogs.webapp.accounts import site_user_for
from botdialogs.webapp.init_data import TelegramUser


class TelegramBackend(BaseBackend):
    """Authenticates a verified Telegram user as the site account linked to them."""

    def authenticate(
        self,
        request: HttpRequest | None,
        telegram_bot: str | None = None,
        telegram_user: TelegramUser | None = None,
        **kwargs: Any,
    ) -> Any | None:
        """The linked (or, if allowed, a new linked) active user; None for other credentials."""
        if telegram_bot is None or not isinstance(telegram_user, TelegramUser) or kwargs:
            return None
        return site_user_for(telegram_bot, telegram_user, create=get_settings().webapp_create_users)

    def get_user(self, user_id: Any) -> Any | None:
        """The active user ``user_id`` (a session's user)."""
        user = get_user_model()._default_manager.filter(pk=user_id).first()
        return user if user is not None and user.is_active else None
