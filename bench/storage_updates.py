"""Dialog updates per second on DjangoStorage, against MemoryStorage and RedisStorage.

The same counter dialog (botdialogs/testing/bots.py) takes button presses from many chats at once
through the real Dispatcher (aiogram_dialog middlewares, FSM middleware, event isolation);
only the Bot API is answered from memory, so storage is what differs. Each storage runs in
the same process and run, and the result is printed as a ratio to MemoryStorage.

    python bench/storage_updates.py [--chats 50] [--presses 20] [--rounds 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/botdialogs_bench python bench/...

With DATABASE_URL the database is created if missing and migrated (PostgreSQL); without it a
fresh SQLite file in a temporary folder is used.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


def setup_django() -> str:
    if not os.environ.get("DATABASE_URL"):
        folder = tempfile.mkdtemp(prefix="botdialogs-bench-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    elif os.environ["DATABASE_URL"].startswith("postgres"):
        import psycopg

        server, _, name = os.environ["DATABASE_URL"].rpartition("/")
        with psycopg.connect(f"{server}/postgres", autocommit=True) as connection:
            exists = connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{name}"')
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connection

    return connection.vendor


STORAGES = {
    "memory": {"BACKEND": "aiogram.fsm.storage.memory.MemoryStorage", "CONFIG": {}},
    "redis": {"BACKEND": "aiogram.fsm.storage.redis.RedisStorage", "CONFIG": {"url": REDIS_URL}},
    "django": {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}},
    # The ORM engine, where "django" above chose psycopg (PostgreSQL); the same on SQLite.
    "django-orm": {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {"backend": "orm"}},
}


async def run_once(storage_name: str, chats: int, presses: int, first_chat: int) -> float:
    """Start the dialog in ``chats`` chats, then time ``presses`` presses in each, all chats
    at once. Returns updates per second."""
    from aiogram import Bot
    from django.conf import settings

    from botdialogs import conf
    from botdialogs.engine import bots
    from botdialogs.testing import RecordingSession, callback_update, message_update

    settings.BOTDIALOGS = {
        "BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}},
        "STORAGE": STORAGES[storage_name],
    }
    conf.get_settings.cache_clear()
    bots.reset()
    dispatcher = bots.get_dispatcher("default")
    session = RecordingSession()
    bot = Bot(bots.bot_token("default"), session=session)
    chat_ids = range(first_chat, first_chat + chats)
    callbacks: dict[int, str] = {}
    for chat_id in chat_ids:
        await dispatcher.feed_raw_update(bot, message_update(chat_id, "/start"))
        markup = session.calls[-1].reply_markup
        callbacks[chat_id] = markup.inline_keyboard[0][0].callback_data

    async def press_all(chat_id: int) -> None:
        for _ in range(presses):
            await dispatcher.feed_raw_update(bot, callback_update(chat_id, callbacks[chat_id]))

    started = time.perf_counter()
    await asyncio.gather(*(press_all(chat_id) for chat_id in chat_ids))
    elapsed = time.perf_counter() - started
    last = session.texts()[-1]
    assert last == f"Count: {presses}", last  # every press counted
    await bots.get_event_isolation().close()
    await bots.get_storage().close()
    return chats * presses / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    vendor = setup_django()
    results: dict[str, list[float]] = {name: [] for name in STORAGES}
    first_chat = int(time.time()) * 1000
    for _ in range(args.rounds):
        # Interleave the storages so machine noise hits all of them alike.
        for name in STORAGES:
            first_chat += args.chats
            results[name].append(asyncio.run(run_once(name, args.chats, args.presses, first_chat)))
    base = statistics.median(results["memory"])
    print(f"database: {vendor}; {args.chats} chats x {args.presses} presses, {args.rounds} rounds")
    print(f"{'storage':<10} {'updates/s (median)':>20} {'vs memory':>10}")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:<10} {median:>20.0f} {median / base:>10.2f}")


if __name__ == "__main__":
    main()
