"""Chat revisions: how a chat page learns that something changed.

Every change to a chat's messages takes the chat's next revision (inside the transaction
that makes the change, with the chat row locked) and stamps the changed message with it.
A page asks ``GET .../messages/?since=<revision>`` (or its websocket) for what changed.

Once the transaction commits, the chat's channel-layer group hears ``chat.changed`` with
the new revision: the chat playground's websockets then read the changes and push them.
The process that commits sends it, whichever it is (the web server, a Celery worker, a
script): with channels-redis it reaches every web process; with the in-memory layer only
pages served by this process (the page catches up on reconnect and on focus anyway).
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from django.db import transaction

from botdialogs.exceptions import MissingExtra
from botdialogs.localtg.models import LocalChat

try:
    from channels.layers import get_channel_layer
except ImportError as error:
    raise MissingExtra("channels", "channels", "local Telegram (botdialogs.localtg)") from error

logger = logging.getLogger("botdialogs.localtg")

#: The type of the channel-layer message a chat's group hears after a change.
CHANGED = "chat.changed"


def group_name(bot_pk: int, chat_id: int) -> str:
    """The channel-layer group of one local chat (ASCII, well under 100 characters)."""
    return f"localtg.chat.{bot_pk}.{chat_id}"


def bump(chat: LocalChat) -> int:
    """Give ``chat`` (locked by the caller's transaction) its next revision and return it."""
    chat.revision += 1
    chat.save(update_fields=["revision"])
    group, revision = group_name(chat.bot_id, chat.chat_id), chat.revision
    transaction.on_commit(lambda: announce(group, revision))
    return chat.revision


def announce(group: str, revision: int) -> None:
    """Tell the pages in ``group`` that the chat reached ``revision`` (sync callers)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, {"type": CHANGED, "revision": revision})
    except Exception:
        # A page that misses this catches up on its next sync; the change itself is
        # committed, and a channel layer that is down must not fail the bot's send.
        logger.exception("Could not announce revision %s to %s", revision, group)
