"""ASGI entry point: webhook deliveries go straight to botdialogs (a lean route in the same
URL space), other HTTP to Django, websockets (the chat playground, the live monitor) to
botdialogs' consumers with the Django session, and channel-layer messages (``manage.py
runworker botdialogs``) to botdialogs' consumers."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()

# These import models and consumers: Django must be set up first.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from botdialogs import routing  # noqa: E402
from botdialogs.http.asgi import WebhookRoute  # noqa: E402
from botdialogs.http.lifespan import Lifespan  # noqa: E402
from botdialogs.localtg import routing as localtg_routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": WebhookRoute(django_asgi_app),
        # Origin checked against ALLOWED_HOSTS: another site's page cannot ride a session.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(routing.websocket_urlpatterns + localtg_routing.websocket_urlpatterns)
            )
        ),
        "channel": ChannelNameRouter(routing.channel_routes),
        # The server's start and stop: the in-process timer firer (embedded defaults).
        "lifespan": Lifespan(),
    }
)
