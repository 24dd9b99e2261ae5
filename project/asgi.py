"""ASGI entry point: webhook deliveries go straight to botdialogs (a lean route in the same
URL space), other HTTP to Django, and channel-layer messages (``manage.py runworker
botdialogs``) to botdialogs' consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

# These import models and consumers: Django must be set up first.
from channels.routing import ChannelNameRouter, ProtocolTypeRouter  # noqa: E402

from botdialogs.http.asgi import WebhookRoute  # noqa: E402
from botdialogs.routing import channel_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": WebhookRoute(django_asgi_app),
        "channel": ChannelNameRouter(channel_routes),
    }
)
