import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
django_asgi_app = get_asgi_application()

# After Django is set up: these import models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from botdialogs import routing  # noqa: E402
from botdialogs.http import Lifespan, WebhookRoute  # noqa: E402
from botdialogs.localtg import routing as localtg_routing  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Webhook deliveries on a lean route; everything else goes to Django.
        "http": WebhookRoute(django_asgi_app),
        # The playground's and the monitor's live pages.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(
                URLRouter(routing.websocket_urlpatterns + localtg_routing.websocket_urlpatterns)
            )
        ),
        # The server's start and stop: the in-process timer firer (no Celery beat here).
        "lifespan": Lifespan(),
    }
)
