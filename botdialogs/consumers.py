"""Channels consumers of botdialogs.

:class:`BackgroundActionConsumer` performs background actions sent over the channel layer
(``BOTDIALOGS['BACKGROUND'] = "channels"``). Run it with ``manage.py runworker botdialogs``.

:class:`MonitorConsumer` streams the live monitor's events to a staff member's browser.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django.urls import NoReverseMatch, reverse

from botdialogs.background.transport import perform_or_retry, send_to_channel
from botdialogs.engine.bots import bot_id, bot_name_for_id
from botdialogs.exceptions import MissingExtra, UnknownBot
from botdialogs.i18n.languages import stored_chat_language
from botdialogs.monitor import GROUP, presence

try:
    from channels.auth import get_user
    from channels.consumer import AsyncConsumer
    from channels.db import database_sync_to_async
    from channels.generic.websocket import AsyncWebsocketConsumer
except ImportError as error:
    raise MissingExtra("channels", "channels", "botdialogs.consumers") from error

logger = logging.getLogger("botdialogs.background")
monitor_logger = logging.getLogger("botdialogs.monitor")

#: Close codes of the monitor's websocket.
FORBIDDEN = 4403  # no staff session
BAD_MESSAGE = 4400  # not a filter message
TOO_MANY = 4429  # more messages than a person sends


class BackgroundActionConsumer(AsyncConsumer):
    """Performs ``{"type": "background.action", "action": {...}}`` messages, each once.

    The worker's loop lives as long as the process, so its Bots (one per loop) are reused.
    The channel layer has no redelivery: an action that failed for a passing reason (its
    unit of work did not commit) is sent to the channel again after a backoff
    (:func:`~botdialogs.background.transport.perform_or_retry`); one that failed for good
    is logged and recorded.
    """

    async def background_action(self, message: dict[str, Any]) -> None:
        """One action from :func:`botdialogs.background.transport.send_to_channel`."""
        action: Any = message.get("action")  # checked where it is performed
        attempt = message.get("attempt")
        await perform_or_retry(
            action,
            attempt if isinstance(attempt, int) else 0,
            functools.partial(send_to_channel, action),
        )


class MonitorConsumer(AsyncWebsocketConsumer):
    """The live monitor's websocket: events of :mod:`botdialogs.monitor`, filtered.

    Staff only: a connection without an active staff session is refused before the
    handshake completes (close code 4403), and an open one is closed with 4403 at the next
    heartbeat after its session ended. The client sends its filters as JSON text,
    ``{"bot": "<name>" or "", "user": <user id> or ""}`` (or the same in the URL's query
    string, applied from the start), and gets the events that match,
    each with ``stack_url``, the user's dialog stacks in the admin. Anything else from the
    client (binary frames, long or malformed texts, unknown keys) closes the socket with
    4400, and more than ``MAX_MESSAGES`` messages in ``FLOOD_WINDOW`` seconds with 4429.
    """

    MAX_MESSAGES = 20
    FLOOD_WINDOW = 10.0
    MAX_MESSAGE_CHARS = 1000

    joined = False
    heartbeat: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Accept staff only; join the monitor group and announce this watcher."""
        user: Any = self.scope.get("user")  # resolved by channels' AuthMiddleware
        if not (user is not None and user.is_active and user.is_staff):
            await self.close(code=FORBIDDEN)
            return
        # Filters may come in the URL too (?bot=&user=), so that none of the first events
        # slips through before the client's first message.
        query = parse_qsl(self.scope.get("query_string", b"").decode("latin-1"))
        filters = _parse_filters(json.dumps(dict(query)), self.MAX_MESSAGE_CHARS)
        if filters is None:
            await self.close(code=BAD_MESSAGE)
            return
        self.filters: dict[str, Any] = filters
        self.received: list[float] = []
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await presence.join(self.channel_name)
        self.joined = True
        self.heartbeat = asyncio.create_task(self._keep_present())
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave the group and withdraw this watcher's presence."""
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        if self.joined:
            self.joined = False
            await presence.leave(self.channel_name)
            await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """A new filter from the client; anything else closes the socket."""
        now = time.monotonic()
        self.received = [at for at in self.received if at > now - self.FLOOD_WINDOW] + [now]
        if len(self.received) > self.MAX_MESSAGES:
            await self.close(code=TOO_MANY)
            return
        filters = _parse_filters(text_data, self.MAX_MESSAGE_CHARS)
        if filters is None:
            await self.close(code=BAD_MESSAGE)
            return
        self.filters = filters
        await self.send(text_data=json.dumps({"type": "filters", **filters}))

    async def monitor_event(self, message: dict[str, Any]) -> None:
        """One event from the group: named, filtered, linked, sent."""
        event = dict(message.get("event") or {})
        _name_bot(event)
        wanted_bot, wanted_user = self.filters["bot"], self.filters["user"]
        if wanted_bot is not None and event.get("bot") != wanted_bot:
            return
        if wanted_user is not None and wanted_user not in _people(event):
            return
        event["stack_url"] = _stack_url(event)
        event.update(await _chat_language(event))
        await self.send(text_data=json.dumps({"type": "event", "event": event}))

    async def _keep_present(self) -> None:
        """Renew this watcher's presence; close the socket once its session has ended
        (signed out, or no longer staff)."""
        while True:
            await asyncio.sleep(presence.HEARTBEAT)
            try:
                user: Any = await get_user(self.scope)
            except Exception:  # a database hiccup: look again at the next beat
                monitor_logger.debug("Could not check a monitor watcher's user", exc_info=True)
            else:
                if not (user.is_active and user.is_staff):
                    await self.close(code=FORBIDDEN)
                    return
            await presence.heartbeat(self.channel_name)


@database_sync_to_async
def _chat_language(event: dict[str, Any]) -> dict[str, str]:
    """The chat's language now and where it came from (one query, only while watched)."""
    bot, chat_id = event.get("bot_id"), event.get("chat_id")
    if not isinstance(bot, int) or not isinstance(chat_id, int):
        return {}
    found = stored_chat_language(bot, chat_id, event.get("user_id"))
    return {"language": found.code, "language_source": found.source} if found else {}


def _people(event: dict[str, Any]) -> tuple[Any, Any]:
    return event.get("user_id"), event.get("chat_id")


def _parse_filters(text: str | None, max_chars: int) -> dict[str, Any] | None:
    """``{"bot": str | None, "user": int | None}`` from a client message, or None if bad."""
    if text is None or len(text) > max_chars:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or not set(data) <= {"bot", "user"}:
        return None
    bot, user = data.get("bot"), data.get("user")
    if bot in (None, ""):
        bot = None
    elif not isinstance(bot, str) or len(bot) > 64:
        return None
    if user in (None, ""):
        user = None
    elif isinstance(user, str) and user.strip().lstrip("-").isdigit() and len(user) < 24:
        user = int(user)
    elif not isinstance(user, int) or isinstance(user, bool):
        return None
    return {"bot": bot, "user": user}


def _name_bot(event: dict[str, Any]) -> None:
    """Fill in the bot's name or id, whichever the publisher did not know."""
    if event.get("bot") is None and isinstance(event.get("bot_id"), int):
        event["bot"] = bot_name_for_id(event["bot_id"]) or str(event["bot_id"])
    elif event.get("bot_id") is None and isinstance(event.get("bot"), str):
        try:
            event["bot_id"] = bot_id(event["bot"])
        except (UnknownBot, ValueError):
            event["bot_id"] = None


def _stack_url(event: dict[str, Any]) -> str:
    """The admin's list of this user's dialog stacks (empty when there is no admin)."""
    try:
        url = reverse("admin:botdialogs_dialogstack_changelist")
    except NoReverseMatch:
        return ""
    query = {"q": event.get("user_id") or event.get("chat_id") or ""}
    if event.get("bot_id") is not None:
        query["bot"] = event["bot_id"]
    return f"{url}?{urlencode(query)}"
