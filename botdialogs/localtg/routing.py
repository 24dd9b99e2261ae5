"""Websocket URLs of local Telegram: the chat playground's live updates."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
