"""Where bots without a token send their Bot API calls: local Telegram, if the site has it.

Local Telegram (the optional app ``botdialogs.localtg``) is found through settings, never
imported: its Bot API lives where the site's URLconf mounted it (the ``localtg:bot-api``
route), on this server's address. The address is ``BOTDIALOGS['LOCAL_TELEGRAM_URL']`` if
set; else the address this process was last reached on (the web server learns it from
each request it serves); else ``http://127.0.0.1:8000``. Workers in other processes (Celery,
Channels) have served no request: give them ``LOCAL_TELEGRAM_URL`` when the web server is
not on the default address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.urls import NoReverseMatch, reverse

from botdialogs.conf import get_settings

DEFAULT_URL = "http://127.0.0.1:8000"
_learned: str | None = None


def remember_request_address(scope: Mapping[str, Any]) -> None:
    """Learn this server's own address from an ASGI scope (the webhook calls it)."""
    global _learned
    server = scope.get("server")
    if server and server[1] is not None:
        host = server[0]
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        _learned = f"{scope.get('scheme', 'http')}://{host}:{server[1]}"


def base_url() -> str:
    """The address of the server that serves local Telegram (no trailing slash)."""
    return get_settings().local_telegram_url or _learned or DEFAULT_URL


def api_base_url() -> str:
    """The aiogram ``TelegramAPIServer.from_base`` argument for local Telegram.

    Raises ImproperlyConfigured when the site's URLconf does not include local Telegram.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        route = reverse("localtg:bot-api", kwargs={"token": "T", "method": "M"})
    except NoReverseMatch:
        raise ImproperlyConfigured(
            "A bot without a TOKEN talks to local Telegram: add 'botdialogs.localtg' to "
            "INSTALLED_APPS and path('localtg/', include('botdialogs.localtg.urls')) to the "
            "site's urls.py, or give the bot a TOKEN"
        ) from None
    return base_url() + route.removesuffix("botT/M").rstrip("/")
