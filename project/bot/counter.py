"""The demo counter: ticks once a second for ten seconds, driven from the background.

With a Celery broker the ten ticks are background actions queued with countdowns
(``botdialogs.perform_background_action``, so workers need nothing from this project).
Without one (Celery runs eagerly: a countdown would not wait) they run as an asyncio job on
the bot's loop through :func:`botdialogs.background.bg_manager`.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

from asgiref.sync import sync_to_async

from botdialogs import background
from botdialogs.tasks import perform_background_action

TICKS = 10
_jobs: set[asyncio.Task[Any]] = set()


def tick(count: int) -> dict[str, Any]:
    """The dialog_data of tick ``count``."""
    return {"count": count, "running": count < TICKS}


def queue_ticks(bot: str, user_id: int, chat_id: int) -> None:
    """Queue the ten ticks on the broker, one second apart."""
    for count in range(1, TICKS + 1):
        action = background.build_action("update", bot, user_id, chat_id, data=tick(count))
        perform_background_action.apply_async((action,), countdown=count)


async def count_in_process(bot: str, user_id: int, chat_id: int) -> None:
    """The ten ticks as an asyncio job on this loop (no broker)."""
    manager = background.bg_manager(bot, user_id, chat_id)
    for count in range(1, TICKS + 1):
        await asyncio.sleep(1)
        await manager.update(tick(count))


async def start_counter(bot: str, user_id: int, chat_id: int) -> None:
    """Start ticking for one chat (from the counter dialog's button)."""
    if not perform_background_action.app.conf.task_always_eager:
        await sync_to_async(queue_ticks)(bot, user_id, chat_id)
        return
    # A fresh context: the job outlives this update and any bot scope around it.
    job = asyncio.get_running_loop().create_task(
        count_in_process(bot, user_id, chat_id), context=contextvars.Context()
    )
    _jobs.add(job)
    job.add_done_callback(_jobs.discard)
