"""Where local Telegram is served: the address bots without a token send their calls to.

Order: ``BOTDIALOGS['LOCAL_TELEGRAM_URL']`` if set; else the address this process was last
reached on (the web server learns it from each request it serves); else
``http://127.0.0.1:8000``. Workers in other processes (Celery, Channels) have served no
request: give them ``LOCAL_TELEGRAM_URL`` when the web server is not on the default address.
"""

from __future__ import annotations

from typing import Any

from botdialogs.conf import get_settings

DEFAULT_URL = "http://127.0.0.1:8000"
_learned: str | None = None


def remember_request_address(scope: dict[str, Any]) -> None:
    """Learn this server's own address from an ASGI scope (called by the webhook view)."""
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
    """The local Telegram base URL (no trailing slash)."""
    return get_settings().local_telegram_url or _learned or DEFAULT_URL


def api_base_url() -> str:
    """The aiogram ``TelegramAPIServer.from_base`` argument for local Telegram."""
    return f"{base_url()}/localtg"
