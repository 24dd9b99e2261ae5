"""Channels consumers of botdialogs.

:class:`BackgroundActionConsumer` performs background actions sent over the channel layer
(``BOTDIALOGS['BACKGROUND'] = "channels"``). Run it with ``manage.py runworker botdialogs``.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.consumer import AsyncConsumer

from botdialogs.background.records import aperform_recorded

logger = logging.getLogger("botdialogs.background")


class BackgroundActionConsumer(AsyncConsumer):
    """Performs ``{"type": "background.action", "action": {...}}`` messages, each once.

    The worker's loop lives as long as the process, so its Bots (one per loop) are reused.
    A failing action is logged and recorded; the channel layer has no redelivery.
    """

    async def background_action(self, message: dict[str, Any]) -> None:
        """One action from :func:`botdialogs.background.delivery.send_to_channel`."""
        try:
            await aperform_recorded(message.get("action"))
        except Exception:
            logger.exception("Background action from the channel layer failed")
