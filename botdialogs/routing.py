"""Channels routes of botdialogs: channel names for ``manage.py runworker``.

Wire them into the site's ASGI application::

    ProtocolTypeRouter({
        "http": django_asgi_app,
        "channel": ChannelNameRouter(botdialogs.routing.channel_routes),
    })
"""

from __future__ import annotations

from typing import Any

from botdialogs.background.delivery import CHANNEL_NAME
from botdialogs.consumers import BackgroundActionConsumer

channel_routes: dict[str, Any] = {CHANNEL_NAME: BackgroundActionConsumer.as_asgi()}
