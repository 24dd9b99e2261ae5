"""A separate OS process that feeds button presses for one chat (see test_isolation.py).

Usage: python -m tests.isolation_worker start <chat_id>
       python -m tests.isolation_worker press <chat_id> <callback_data> <message_id> <count>
The database comes from DATABASE_URL, as in any process of the project.
"""

from __future__ import annotations

import asyncio
import os
import sys


async def main(argv: list[str]) -> None:
    from aiogram import Bot
    from django.conf import settings

    from botdialogs import conf
    from botdialogs.engine import bots
    from botdialogs.testing import RecordingSession, callback_update, message_update

    settings.BOTDIALOGS = {
        "BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}}
    }
    conf.get_settings.cache_clear()
    dispatcher = bots.get_dispatcher("default")
    bot = Bot(bots.bot_token("default"), session=RecordingSession())
    command, chat_id = argv[0], int(argv[1])
    if command == "start":
        await dispatcher.feed_raw_update(bot, message_update(chat_id, "/start"))
        return
    data, message_id, count = argv[2], int(argv[3]), int(argv[4])
    # Ten presses in flight at a time: this process races itself as well as the other one.
    for first in range(0, count, 10):
        await asyncio.gather(
            *(
                dispatcher.feed_raw_update(bot, callback_update(chat_id, data, message_id))
                for _ in range(min(10, count - first))
            )
        )
    await bots.get_event_isolation().close()


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django

    django.setup()
    asyncio.run(main(sys.argv[1:]))
