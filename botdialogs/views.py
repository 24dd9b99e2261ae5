"""Staff pages of botdialogs beside its admin: the live monitor.

The page is a shell; its events arrive over the websocket ``ws/botdialogs/monitor/``
(:class:`botdialogs.consumers.MonitorConsumer`). Wrapped in ``admin.site.admin_view``: a
visitor without a staff session is sent to the admin's login page and comes back after.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from botdialogs.conf import get_settings
from botdialogs.monitor import KINDS

#: Events the page keeps; older ones drop off the bottom.
MAX_EVENTS = 200


def _monitor(request: HttpRequest) -> HttpResponse:
    """``GET /botdialogs/monitor/?bot=<name>&user=<id>``: the live monitor page."""
    user = request.GET.get("user", "").strip()
    context = {
        **admin.site.each_context(request),
        "title": "Live monitor",
        "bots": list(get_settings().bots),
        "bot_filter": request.GET.get("bot", ""),
        "user_filter": user if user.lstrip("-").isdigit() else "",
        "monitor_config": {
            "socket_path": "/ws/botdialogs/monitor/",
            "max_events": MAX_EVENTS,
            "kinds": KINDS,
        },
    }
    return TemplateResponse(request, "botdialogs/monitor.html", context)


monitor = admin.site.admin_view(_monitor)
