"""The demo counter: ticks once a second for ten seconds, driven by dialog timers.

Pressing "Count to ten" schedules ten timers (``botdialogs.timers``), one per tick, keyed
``counter:1`` … ``counter:10``; they are rows, so a worker restart neither loses nor repeats
a tick. They commit with the press's state, and closing the counter dialog cancels those
still pending in the same transaction: a tick never lands in another dialog.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from botdialogs import timers

TICKS = 10


def tick(count: int) -> dict[str, Any]:
    """The dialog_data tick ``count`` adds: its own key, so the counter shows how many ticks
    arrived, whatever their order (a tick retried after a failure lands after later ones)."""
    return {tick_seen(count): True}


def tick_seen(count: int) -> str:
    """The dialog_data key set by tick ``count``."""
    return f"tick:{count}"


def ticks_seen(dialog_data: dict[str, Any]) -> int:
    """How many ticks have arrived in this dialog."""
    return sum(1 for count in range(1, TICKS + 1) if dialog_data.get(tick_seen(count)))


def tick_key(count: int) -> str:
    """The timer key of tick ``count`` (one per chat: pressing again replaces them)."""
    return f"counter:{count}"


async def start_counter(bot: str, user_id: int, chat_id: int) -> None:
    """Schedule the ten ticks for one chat (from the counter dialog's button)."""
    step = settings.DEMO_COUNTER_TICK
    for count in range(1, TICKS + 1):
        await timers.aschedule(
            bot,
            user_id,
            chat_id,
            "update",
            after=step * count,
            data=tick(count),
            key=tick_key(count),
        )


async def stop_counter(bot: str, chat_id: int) -> None:
    """Cancel the ticks still pending (the counter dialog closed)."""
    for count in range(1, TICKS + 1):
        await timers.acancel(bot=bot, chat_id=chat_id, key=tick_key(count))
