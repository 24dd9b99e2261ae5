"""Websocket URLs of local Telegram: the chat playground's live updates."""

from __future__ import annotations

from typing import Any

from django.urls import path

from botdialogs.localtg.consumers import ChatConsumer

# Channels' URLRouter takes ASGI apps where django-stubs expects views.
chat_consumer: Any = ChatConsumer.as_asgi()
websocket_urlpatterns: list[Any] = [
    path("ws/localtg/<str:name>/<int:chat_id>/", chat_consumer, name="localtg-chat"),
]
