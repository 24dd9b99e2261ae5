"""The chat playground's websocket: a page hears its chat's changes as they happen.

The page sends ``{"type": "sync", "since": <revision>}`` (on open, on focus); the consumer
answers with ``{"type": "changes", "cause": "sync", ...}`` (what
:func:`~botdialogs.localtg.chats.read_chat` returns) and from then on pushes the changes
whenever the chat's group hears ``chat.changed`` (``"cause": "change"``). Writing and
pressing go through the HTTP user API. Bad frames get an ``{"type": "error"}`` frame; a
flood or an oversized frame closes the socket.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from asgiref.sync import sync_to_async

from botdialogs.exceptions import MissingExtra, UnknownBot
from botdialogs.localtg import chats
from botdialogs.localtg.revisions import group_name

try:
    from channels.generic.websocket import AsyncWebsocketConsumer
except ImportError as error:
    raise MissingExtra("channels", "channels", "local Telegram (botdialogs.localtg)") from error

#: Close codes (4000-4999 are the application's): no such bot or chat, flood, frame size.
CLOSE_NOT_FOUND = 4404
CLOSE_FLOOD = 4008
CLOSE_TOO_BIG = 4009
#: The largest frame a page sends (a sync is a few dozen bytes).
MAX_FRAME = 1024
#: Frames per second a page may send, and the burst it may save up.
FRAME_RATE, FRAME_BURST = 5.0, 20.0


class ChatConsumer(AsyncWebsocketConsumer):
    """``ws/localtg/<name>/<chat_id>/``: live changes of one local chat."""

    bot_name: str
    chat_id: int
    group: str = ""

    async def connect(self) -> None:
        """Accept, then close with 4404 when there is no such local bot or chat."""
        kwargs = self.scope["url_route"]["kwargs"]
        self.bot_name, self.chat_id = kwargs["name"], int(kwargs["chat_id"])
        self.sent_revision = 0
        self.synced = False
        self.tokens, self.refilled = FRAME_BURST, time.monotonic()
        self.push_lock = asyncio.Lock()
        # Accepted first: a close before accepting reaches the page as a failed
        # handshake, without the code that says why.
        await self.accept()
        try:
            chat = await sync_to_async(chats.find_chat)(self.bot_name, self.chat_id)
        except (UnknownBot, chats.ChatError):
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = group_name(chat.bot_id, chat.chat_id)
        await self.channel_layer.group_add(self.group, self.channel_name)

    async def disconnect(self, code: int) -> None:
        """Leave the chat's group."""
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """One frame from the page: only ``sync`` is understood."""
        if not self._take_token():
            await self.close(code=CLOSE_FLOOD)
            return
        if len(text_data or "") > MAX_FRAME or len(bytes_data or b"") > MAX_FRAME:
            await self.close(code=CLOSE_TOO_BIG)
            return
        if text_data is None:
            await self._error("Send JSON text frames")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self._error("Not JSON")
            return
        if not isinstance(frame, dict) or frame.get("type") != "sync":
            await self._error('Expected {"type": "sync", "since": <revision>}')
            return
        since = frame.get("since", 0)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            await self._error("since must be a revision (an integer >= 0)")
            return
        await self._push(since, reply=True)

    async def chat_changed(self, event: dict[str, Any]) -> None:
        """The chat's group heard of a new revision: push what this page has not seen."""
        if self.synced and int(event.get("revision", 0)) > self.sent_revision:
            await self._push(self.sent_revision)

    async def _push(self, since: int, reply: bool = False) -> None:
        async with self.push_lock:
            if not reply:
                # Another push may have covered this change while this one waited.
                since = max(since, self.sent_revision)
            try:
                changes = await sync_to_async(chats.read_chat)(self.bot_name, self.chat_id, since)
            except UnknownBot:
                await self.close(code=CLOSE_NOT_FOUND)
                return
            if not reply and changes["revision"] <= since:
                return
            self.synced = True
            self.sent_revision = max(self.sent_revision, changes["revision"])
            # "cause" says whether the page asked (sync) or the chat's group heard a change.
            cause = "sync" if reply else "change"
            await self.send(
                json.dumps({"type": "changes", "cause": cause, "since": since, **changes})
            )

    async def _error(self, description: str) -> None:
        await self.send(json.dumps({"type": "error", "description": description}))

    def _take_token(self) -> bool:
        """A token bucket per connection: FRAME_RATE a second, FRAME_BURST at once."""
        now = time.monotonic()
        self.tokens = min(FRAME_BURST, self.tokens + (now - self.refilled) * FRAME_RATE)
        self.refilled = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
