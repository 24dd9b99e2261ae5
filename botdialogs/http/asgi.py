"""A lean ASGI route for webhook deliveries, in front of Django, in the site's URL space.

Django's request machinery costs a thread hop, the middleware stack and an ORM connection
per request: most of a webhook delivery's CPU. :class:`WebhookRoute` wraps the site's ASGI
application and answers ``POST`` requests whose path resolves (through the site's own
URLconf) to :func:`botdialogs.http.views.webhook` itself, on the event loop, with the same checks
and the same processing (:mod:`botdialogs.http.delivery`); every other request goes to Django
unchanged. So the webhook stays where ``urls.py`` puts it and is configured the same way::

    # asgi.py
    django_app = get_asgi_application()
    from botdialogs.http.asgi import WebhookRoute
    application = WebhookRoute(django_app)   # or inside channels' ProtocolTypeRouter

Without it the Django view serves the same URL with the same behaviour, only slower.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.urls import Resolver404, resolve

from botdialogs.conf import get_settings
from botdialogs.engine.bots import get_bot
from botdialogs.engine.local_api import remember_request_address
from botdialogs.exceptions import (
    BadUpdate,
    UnknownBot,
    UpdateTooLarge,
    WebhookForbidden,
    is_transient,
)
from botdialogs.http import delivery as webhooks

logger = logging.getLogger("botdialogs.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SECRET_HEADER = webhooks.SECRET_HEADER.lower().encode()


class WebhookRoute:
    """ASGI application: webhook deliveries handled here, everything else by ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Paths that resolved to the webhook view, and the bot each names.
        self._bots: dict[str, str] = {}
        self._timers_checked = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection."""
        if not self._timers_checked:
            self._timers_checked = True
            await _start_timer_firer()
        if scope["type"] == "http" and scope["method"] == "POST":
            name = self._webhook_bot(scope)
            if name is not None:
                await self._deliver(name, scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _webhook_bot(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        name = self._bots.get(path)
        if name is not None:
            return name
        from botdialogs.http.views import webhook

        try:
            match = resolve(path)
        except Resolver404:
            return None
        if match.func is not webhook:
            return None
        name = match.kwargs["name"]
        if name in get_settings().bots and len(self._bots) < 1000:
            self._bots[path] = name
        return name

    async def _deliver(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        try:
            webhooks.check_headers(
                name, _text(headers.get(_SECRET_HEADER)), _text(headers.get(b"content-length"))
            )
            body = await _read_body(receive, get_settings().webhook_max_body_bytes)
            if body is None:
                return  # the client went away, or sent far too much: no one to answer
            remember_request_address(scope)
            delivery = webhooks.parse_delivery(body, bot=get_bot(name))
            response = await webhooks.handle_delivery(name, delivery)
        except UnknownBot:
            await _respond(send, 404, {"ok": False, "description": "Unknown bot"})
        except WebhookForbidden:
            await _respond(send, 403, {"ok": False, "description": "Forbidden"})
        except UpdateTooLarge as error:
            # Read (and drop) what the client is still sending, so that it sees the answer.
            if getattr(error, "body_read", False) or await _drain(receive):
                await _respond(send, 413, {"ok": False, "description": "Request body too large"})
        except BadUpdate as error:
            await _respond(send, 400, {"ok": False, "description": str(error)})
        except Exception as error:
            if is_transient(error):
                # Nothing was committed or queued: Telegram delivers the update again.
                await _respond(send, 503, {"ok": False, "description": "Try again later"})
            else:
                logger.exception("Webhook delivery for bot %r failed", name)
                await _respond(send, 500, {"ok": False, "description": "Server error"})
            # A handler's ORM connection may have broken with the database: renew it.
            await sync_to_async(close_old_connections)()
        else:
            await _respond(send, 200, response)


async def _start_timer_firer() -> None:
    """With no broker (Celery eager: the embedded defaults) nothing runs beat: dialog timers
    are fired in this process, on this loop, from the first request on."""
    from botdialogs.task_queue import runs_in_process
    from botdialogs.timers.firing import start_in_process

    wanted = get_settings().timers_in_process  # "auto", True or False
    if wanted is True or (wanted == "auto" and await sync_to_async(runs_in_process)()):
        start_in_process()


def _text(value: bytes | None) -> str | None:
    return value.decode("latin-1") if value is not None else None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when the client disconnected.

    Past ``limit`` (counted as it arrives: Content-Length may lie or be absent) the rest is
    read and dropped, then UpdateTooLarge is raised (None if the client sent far too much).
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        more = message.get("more_body", False)
        if size > limit:
            if more and not await _drain(receive):
                return None
            error = UpdateTooLarge(f"Body over WEBHOOK_MAX_BODY_BYTES ({limit})")
            error.body_read = True  # type: ignore[attr-defined]
            raise error
        chunks.append(chunk)
        if not more:
            return b"".join(chunks)


#: Bytes of a too-large body read and dropped before answering 413; past that, hang up.
DRAIN_LIMIT = 64 * 1024 * 1024


async def _drain(receive: Receive) -> bool:
    """Read the rest of the request body; False when the client went away or sent too much."""
    drained = 0
    while drained <= DRAIN_LIMIT:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
