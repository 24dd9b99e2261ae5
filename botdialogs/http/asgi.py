"""A lean ASGI route for webhook deliveries, in front of Django, in the site's URL space.

Django's request machinery costs a thread hop, the middleware stack and an ORM connection
per request: most of a webhook delivery's CPU. :class:`WebhookRoute` wraps the site's ASGI
application and answers ``POST`` requests whose path resolves (through the site's own
URLconf) to :func:`botdialogs.http.views.webhook` itself, on the event loop, with the same checks
and the same processing (:mod:`botdialogs.http.webhook`); every other request goes to Django
unchanged. So the webhook stays where ``urls.py`` puts it and is configured the same way::

    # asgi.py
    django_app = get_asgi_application()
    from botdialogs.http.asgi import WebhookRoute
    application = WebhookRoute(django_app)   # answers the lifespan scope too

    # or inside channels' ProtocolTypeRouter, with the lifespan app beside it:
    from botdialogs.http.lifespan import Lifespan
    application = ProtocolTypeRouter({"http": WebhookRoute(django_app), "lifespan": Lifespan()})

Without it the Django view serves the same URL with the same behaviour, only slower.

A client has ``WEBHOOK_BODY_TIMEOUT`` seconds, from the headers on, to send the whole body:
after that it gets 408 and its connection is closed, with nothing processed, so a slow or
stuck client holds a socket no longer than that (:class:`BodyDeadline`; what to put in front
is in docs/howto/go-live.md).
"""

from __future__ import annotations

import asyncio
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
from botdialogs.exceptions import UpdateTooLarge, WebhookBodyTimeout
from botdialogs.http.lifespan import Lifespan
from botdialogs.http.webhook import (
    SECRET_HEADER,
    check_headers,
    error_status,
    handle_delivery,
    parse_delivery,
)

logger = logging.getLogger("botdialogs.webhook")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SECRET_HEADER = SECRET_HEADER.lower().encode()


class WebhookRoute:
    """ASGI application: webhook deliveries handled here, everything else by ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # Paths that resolved to the webhook view, and the bot each names.
        self._bots: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one ASGI connection (a lifespan one too, when this is the whole site)."""
        if scope["type"] == "lifespan":
            await Lifespan()(scope, receive, send)
            return
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
        try:
            await self._answer(name, scope, BodyDeadline(receive), send)
        except WebhookBodyTimeout as error:
            # Raised only by BodyDeadline, so no answer has started yet.
            logger.warning("Webhook delivery for bot %r: %s", name, error)
            await _respond(send, 408, {"ok": False, "description": str(error)}, close=True)

    async def _answer(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        try:
            check_headers(
                name, _text(headers.get(_SECRET_HEADER)), _text(headers.get(b"content-length"))
            )
            body = await _read_body(receive, get_settings().webhook_max_body_bytes)
            if body is None:
                return  # the client went away, or sent far too much: no one to answer
            remember_request_address(scope)
            delivery = parse_delivery(body, bot=get_bot(name))
            response = await handle_delivery(name, delivery)
        except WebhookBodyTimeout:
            raise
        except Exception as error:
            answer = error_status(error)
            if isinstance(error, UpdateTooLarge) and not (
                # Read (and drop) what the client is still sending, so that it sees the answer.
                getattr(error, "body_read", False) or await _drain(receive)
            ):
                return
            if answer is None:
                logger.exception("Webhook delivery for bot %r failed", name)
                answer = (500, "Server error")
            await _respond(send, answer[0], {"ok": False, "description": answer[1]})
            if answer[0] >= 500:
                # A handler's ORM connection may have broken with the database: renew it.
                await sync_to_async(close_old_connections)()
        else:
            await _respond(send, 200, response)


class BodyDeadline:
    """``receive`` with a deadline for the whole request body (``WEBHOOK_BODY_TIMEOUT``).

    Only reading the body waits on the client: processing an update is never cut short.
    """

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.seconds = get_settings().webhook_body_timeout
        self.deadline = asyncio.get_running_loop().time() + self.seconds

    async def __call__(self) -> Message:
        """The next ASGI message; WebhookBodyTimeout when the deadline passes first."""
        try:
            async with asyncio.timeout_at(self.deadline):
                return await self.receive()
        except TimeoutError:
            raise WebhookBodyTimeout(
                f"Body not sent within WEBHOOK_BODY_TIMEOUT ({self.seconds:g} s)"
            ) from None


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


async def _respond(send: Send, status: int, body: dict[str, Any], close: bool = False) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if close:  # the rest of the body may still come: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
