"""Channels routes of botdialogs: channel names for ``manage.py runworker`` and websocket
URLs for the pages of its admin.

Wire them into the site's ASGI application::

    ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(botdialogs.routing.websocket_urlpatterns))
        ),
        "channel": ChannelNameRouter(botdialogs.routing.channel_routes),
    })
"""

from __future__ import annotations

from typing import Any

from django.urls import path

from botdialogs.background.transport import CHANNEL_NAME
from botdialogs.consumers import BackgroundActionConsumer, MonitorConsumer

channel_routes: dict[str, Any] = {CHANNEL_NAME: BackgroundActionConsumer.as_asgi()}

#: Websocket URLs (each consumer checks its own permissions).
websocket_urlpatterns: list[Any] = [
    # The live monitor (staff only; the page is botdialogs:monitor).
    path(
        "ws/botdialogs/monitor/",
        MonitorConsumer.as_asgi(),  # type: ignore[arg-type]  # an ASGI app, as channels routes
        name="botdialogs-monitor",
    ),
]
