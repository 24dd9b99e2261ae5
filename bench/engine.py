"""Engine table: dialog updates per second of the counter dialog, per storage.

The counter dialog (botdialogs/testing/bots.py) takes button presses from many chats at once through
a real Dispatcher (aiogram_dialog middlewares, FSM middleware, event isolation); the Bot API
is answered from memory (botdialogs.testing.RecordingSession), so the storage is what differs.

Rows (``ROWS``):

- ``memory``, ``redis``, ``django-pg``, ``django-sqlite``: botdialogs' Dispatcher
  (``botdialogs.bots.get_dispatcher``) on MemoryStorage, aiogram's RedisStorage (with Redis
  locks), DjangoStorage on PostgreSQL and on SQLite;
- ``dropin-pg``: ``DjangoStorage()`` dropped into a plain aiogram ``Dispatcher`` with
  ``setup_dialogs``, as a user of plain aiogram would (aiogram's own FSM middleware; the
  storage's ``create_isolation()`` when it has one, else aiogram's default isolation);
- ``dropin-pg-plain``: the same with no isolation argument at all,
  ``Dispatcher(storage=DjangoStorage())`` and ``setup_dialogs(dispatcher)``, as most aiogram
  users write it first; its peer ``dropin-redis-plain`` is that Dispatcher on aiogram's plain
  ``RedisStorage`` (no isolation either; the destiny in the key, which aiogram_dialog needs);
- ``nodes``: the counter as botdialogs nodes (bench/nodes_counter.py) on botdialogs'
  Dispatcher and DjangoStorage on PostgreSQL (chat lock, one transaction per step), and in the
  same process the same flow through a botnodes-style router on one Redis hash with HGET/HSET
  and no lock (bench/botnodes_peer.py); prints both and ``ratio`` (ours / theirs).

One measurement per process (the runner starts ``python -m bench.engine --row NAME``): each
row gets a fresh interpreter, its own database settings and no leftovers of another row.
It prints one JSON line: updates, seconds, updates_per_s, cpu_ms_per_update (this process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterable
from typing import Any

#: row name -> the row its ratio is taken against ("vs peer"); rows not named: ``redis``.
PEERS: dict[str, str] = {
    "dropin-pg": "dropin-redis-plain",
    "dropin-pg-plain": "dropin-redis-plain",
}

#: row name -> (what it is, the database it needs: "postgresql", "sqlite" or None).
ROWS: dict[str, tuple[str, str | None]] = {
    "memory": ("botdialogs Dispatcher, aiogram MemoryStorage", None),
    "redis": ("botdialogs Dispatcher, aiogram RedisStorage + RedisEventIsolation", None),
    "django-pg": ("botdialogs Dispatcher, DjangoStorage on PostgreSQL", "postgresql"),
    "django-pg-async-commit": (
        "the same with CONFIG synchronous_commit=False (commits do not wait for the WAL flush)",
        "postgresql",
    ),
    "django-pg-prepared": (
        "the same with CONFIG prepared_statements=True (prepared once per connection, sent in "
        "pipeline mode)",
        "postgresql",
    ),
    "django-sqlite": ("botdialogs Dispatcher, DjangoStorage on SQLite", "sqlite"),
    "dropin-pg": (
        "plain aiogram Dispatcher + DjangoStorage() on PostgreSQL; chat lock: the storage's "
        "create_isolation() if it has one, else aiogram's default (none)",
        "postgresql",
    ),
    "dropin-pg-plain": (
        "plain aiogram Dispatcher(storage=DjangoStorage()) on PostgreSQL, no events_isolation "
        "argument (to the Dispatcher or setup_dialogs)",
        "postgresql",
    ),
    "dropin-redis-plain": (
        "plain aiogram Dispatcher(storage=RedisStorage(...)), no events_isolation argument",
        None,
    ),
    "nodes": (
        "node steps/s: botdialogs nodes on DjangoStorage (PostgreSQL) vs a botnodes-style "
        "Redis HGET/HSET router, same process, same flow",
        "postgresql",
    ),
}


def redis_url() -> str:
    """The Redis the benchmarks use (``REDIS_URL``)."""
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/6"


def setup_django() -> str:
    """Set Django up on ``DATABASE_URL`` (already migrated by the runner); returns the vendor."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()
    from django.db import connection

    return connection.vendor


def storage_setting(row: str) -> dict[str, Any]:
    """``BOTDIALOGS['STORAGE']`` of a row on botdialogs' Dispatcher."""
    if row == "memory":
        return {"BACKEND": "aiogram.fsm.storage.memory.MemoryStorage", "CONFIG": {}}
    if row == "redis":
        return {"BACKEND": "aiogram.fsm.storage.redis.RedisStorage", "CONFIG": {"url": redis_url()}}
    if row == "django-pg-async-commit":
        config = {"synchronous_commit": False}
        return {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": config}
    if row == "django-pg-prepared":
        config = {"prepared_statements": True}
        return {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": config}
    return {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}}


def use_counter_bot(
    storage: dict[str, Any], router: str = "botdialogs.testing.bots.counter_router"
) -> None:
    """Make bot "default" the counter bot on ``storage`` and forget cached Dispatchers."""
    from django.conf import settings

    from botdialogs import conf
    from botdialogs.engine import bots

    settings.BOTDIALOGS = {
        "BOTS": {"default": {"ROUTER": router}},
        "STORAGE": storage,
    }
    conf.get_settings.cache_clear()
    bots.reset()


def dropin_dispatcher(row: str = "dropin-pg") -> Any:
    """A plain aiogram Dispatcher with aiogram_dialog, no botdialogs middleware: the "drop-in"
    rows. ``dropin-pg``: ``DjangoStorage()`` with its ``create_isolation()`` (when it has one);
    ``dropin-pg-plain``: ``DjangoStorage()`` alone; ``dropin-redis-plain``: RedisStorage alone.
    """
    from aiogram import Dispatcher
    from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage
    from aiogram_dialog import setup_dialogs

    from botdialogs.storage import DjangoStorage
    from botdialogs.testing.bots import counter_router

    storage: BaseStorage
    isolation = None
    if row == "dropin-redis-plain":
        storage = RedisStorage.from_url(
            redis_url(), key_builder=DefaultKeyBuilder(with_bot_id=True, with_destiny=True)
        )
    else:
        storage = DjangoStorage()
        create_isolation = getattr(storage, "create_isolation", None)
        if row == "dropin-pg" and create_isolation is not None:
            isolation = create_isolation()
    if isolation is None:
        dispatcher = Dispatcher(storage=storage)
        dispatcher.include_router(counter_router())
        setup_dialogs(dispatcher)
    else:
        dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
        dispatcher.include_router(counter_router())
        setup_dialogs(dispatcher, events_isolation=isolation)
    return dispatcher


async def close_dispatcher(dispatcher: Any) -> None:
    """Close what the Dispatcher's storage and isolation opened on this loop."""
    await dispatcher.fsm.events_isolation.close()
    await dispatcher.storage.close()


async def start_chats(dispatcher: Any, bot: Any, chat_ids: Iterable[int]) -> dict[int, str]:
    """Send /start in each chat (one after the other); returns the "+1" callback data."""
    from botdialogs.testing import message_update

    session = bot.session
    callbacks = {}
    for chat_id in chat_ids:
        await dispatcher.feed_raw_update(bot, message_update(chat_id, "/start"))
        markup = session.calls[-1].reply_markup
        callbacks[chat_id] = markup.inline_keyboard[0][0].callback_data
    return callbacks


async def press(dispatcher: Any, bot: Any, chat_id: int, callback_data: str) -> None:
    """One press of the "+1" button in a chat."""
    from botdialogs.testing import callback_update

    await dispatcher.feed_raw_update(bot, callback_update(chat_id, callback_data))


def check_counts(session: Any, chat_ids: Iterable[int], presses: int) -> None:
    """Every chat's last text is "Count: <presses>": no press lost or counted twice."""
    from aiogram.methods import EditMessageText, SendMessage

    last: dict[int, str] = {}
    for call in session.calls:
        if isinstance(call, SendMessage | EditMessageText):
            last[int(call.chat_id)] = call.text
    wrong = {c: last.get(c) for c in chat_ids if last.get(c) != f"Count: {presses}"}
    if wrong:
        raise AssertionError(f"chats with a wrong count after {presses} presses: {wrong}")


async def run_counter(
    dispatcher: Any, chats: int, presses: int, first_chat: int
) -> dict[str, float]:
    """Start ``chats`` chats, then time ``presses`` presses in each, all chats at once."""
    from aiogram import Bot

    from botdialogs.engine import bots
    from botdialogs.testing import RecordingSession

    bot = Bot(bots.bot_token("default"), session=RecordingSession())
    chat_ids = range(first_chat, first_chat + chats)
    callbacks = await start_chats(dispatcher, bot, chat_ids)

    async def press_all(chat_id: int) -> None:
        for _ in range(presses):
            await press(dispatcher, bot, chat_id, callbacks[chat_id])

    cpu_before = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(press_all(chat_id) for chat_id in chat_ids))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    check_counts(bot.session, chat_ids, presses)
    updates = chats * presses
    return {
        "updates": updates,
        "seconds": elapsed,
        "updates_per_s": updates / elapsed,
        "cpu_ms_per_update": cpu * 1000 / updates,
    }


async def measure(row: str, chats: int, presses: int, first_chat: int) -> dict[str, float]:
    """One measurement of ``row`` in this process (Django is set up)."""
    from botdialogs.engine import bots

    if row == "nodes":
        return await measure_nodes(chats, presses, first_chat)
    if row.startswith("dropin-"):
        use_counter_bot(storage_setting(row))
        dispatcher = dropin_dispatcher(row)
    else:
        use_counter_bot(storage_setting(row))
        dispatcher = bots.get_dispatcher("default")
    try:
        return await run_counter(dispatcher, chats, presses, first_chat)
    finally:
        await close_dispatcher(dispatcher)


async def measure_nodes(chats: int, presses: int, first_chat: int) -> dict[str, float]:
    """The "nodes" row: ours, then the botnodes-style peer, in this process; and the ratio."""
    from redis.asyncio import Redis

    from bench.botnodes_peer import HASH, peer_dispatcher
    from botdialogs.engine import bots

    use_counter_bot(storage_setting("nodes"), "bench.nodes_counter.build_router")
    dispatcher = bots.get_dispatcher("default")
    try:
        ours = await run_counter(dispatcher, chats, presses, first_chat)
    finally:
        await close_dispatcher(dispatcher)
    redis = Redis.from_url(redis_url())
    try:
        await redis.delete(HASH)
        theirs = await run_counter(peer_dispatcher(redis), chats, presses, first_chat)
        await redis.delete(HASH)
    finally:
        await redis.aclose()
    return {
        **ours,
        "peer_updates_per_s": theirs["updates_per_s"],
        "peer_cpu_ms_per_update": theirs["cpu_ms_per_update"],
        "ratio": ours["updates_per_s"] / theirs["updates_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", choices=ROWS, required=True)
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--first-chat", type=int, default=int(time.time()) * 1000)
    args = parser.parse_args()
    vendor = setup_django()
    wanted = ROWS[args.row][1]
    if wanted is not None and vendor != wanted:
        sys.exit(f"row {args.row} needs DATABASE_URL on {wanted}, not {vendor}")
    result = asyncio.run(measure(args.row, args.chats, args.presses, args.first_chat))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
