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

from botdialogs.background.delivery import CHANNEL_NAME
from botdialogs.consumers import BackgroundActionConsumer

channel_routes: dict[str, Any] = {CHANNEL_NAME: BackgroundActionConsumer.as_asgi()}

#: Websocket URLs (each consumer checks its own permissions).
websocket_urlpatterns: list[Any] = []
