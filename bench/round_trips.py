"""Round trips, statements and connections per button press, counted at the servers.

Counting proxies (botdialogs/testing/round_trips.py) sit between the code under test and
PostgreSQL and Redis.
One chat presses the counter's "+1" button N times, one press after the other, after a /start
that opened every pooled connection; the counts of the presses are divided by N.

Paths (``PATHS``):

- through a Dispatcher, in its own process (``python -m bench.round_trips --path NAME``):
  ``django-pg`` (botdialogs' Dispatcher, DjangoStorage), ``dropin-pg`` (plain aiogram
  Dispatcher + DjangoStorage()), ``redis`` (botdialogs' Dispatcher, RedisStorage);
- through the webhook, end to end (run from the runner): ``webhook-ours`` (uvicorn + Django,
  its database and Redis settings pointed at the proxies) and ``webhook-peer`` (aiogram's
  aiohttp server, its Redis pointed at the proxy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from botdialogs.testing.round_trips import Counts, RoundTripProxy

DISPATCHER_PATHS = ("django-pg", "dropin-pg", "redis")
WEBHOOK_PATHS = ("webhook-ours", "webhook-peer")
PATHS = DISPATCHER_PATHS + WEBHOOK_PATHS
SERVERS = ("postgres", "redis")
# psycopg prepares a statement on its 5th run on a connection, which costs a round trip once:
# presses before counting, so the counts are the steady state of a long-running process.
WARM_UP_PRESSES = 6


def via(url: str, proxy: RoundTripProxy) -> str:
    """``url`` (postgres:// or redis://) with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    auth = parts.netloc.rpartition("@")[0]
    netloc = f"{auth}@{proxy.host}:{proxy.port}" if auth else f"{proxy.host}:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def upstream(url: str, default_port: int) -> tuple[str, int]:
    """Host and port a URL points at."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


async def settled(proxies: dict[str, RoundTripProxy], deadline: float = 5.0) -> None:
    """Wait until nothing crossed the proxies for 100 ms (a server finishing its request after
    answering, such as closing its per-request database connection), at most ``deadline`` s."""
    end = time.monotonic() + deadline
    last, quiet_since = None, time.monotonic()
    while time.monotonic() < end:
        now = {name: proxy.totals() for name, proxy in proxies.items()}
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 0.1:
            return
        await asyncio.sleep(0.01)  # polling interval of the check above


async def count_presses(
    press: Callable[[], Awaitable[None]],
    proxies: dict[str, RoundTripProxy],
    presses: int,
) -> dict[str, float]:
    """Press :data:`WARM_UP_PRESSES` times, then ``presses`` times counted; per counted press:
    round trips, statements, connections per server, and the most round trips of one press."""
    for _ in range(WARM_UP_PRESSES):
        await press()
    await settled(proxies)
    before = {name: proxy.totals() for name, proxy in proxies.items()}
    largest = dict.fromkeys(proxies, 0)
    for _ in range(presses):
        start = {name: proxy.totals() for name, proxy in proxies.items()}
        await press()
        for name, proxy in proxies.items():
            largest[name] = max(largest[name], (proxy.totals() - start[name]).round_trips)
    await settled(proxies)
    result: dict[str, float] = {}
    for name, proxy in proxies.items():
        spent: Counts = proxy.totals() - before[name]
        result[f"{name}_round_trips"] = spent.round_trips / presses
        result[f"{name}_round_trips_max"] = largest[name]
        result[f"{name}_statements"] = spent.statements / presses
        result[f"{name}_connections"] = spent.connections / presses
    return result


async def through_dispatcher(path: str, presses: int, first_chat: int) -> dict[str, float]:
    """Counts per press of a Dispatcher path, in this process (Django set up on PostgreSQL)."""
    from aiogram import Bot
    from django.db import connections

    from bench import engine
    from botdialogs.engine import bots
    from botdialogs.testing import RecordingSession

    database = connections["default"].settings_dict
    real = (database.get("HOST") or "127.0.0.1", int(database.get("PORT") or 5432))
    async with (
        RoundTripProxy(*real) as postgres,
        RoundTripProxy(*upstream(engine.redis_url(), 6379), protocol="redis") as redis,
    ):
        # The storage and the locks read their connection settings from here on each connect.
        database["HOST"], database["PORT"] = postgres.host, postgres.port
        try:
            setting = engine.storage_setting(path)
            if path == "redis":
                proxied = via(engine.redis_url(), redis)
                setting = {**setting, "CONFIG": {**setting["CONFIG"], "url": proxied}}
            engine.use_counter_bot(setting)
            if path == "dropin-pg":
                dispatcher = engine.dropin_dispatcher()
            else:
                dispatcher = bots.get_dispatcher("default")
            bot = Bot(bots.bot_token("default"), session=RecordingSession())
            callbacks = await engine.start_chats(dispatcher, bot, [first_chat])

            async def press() -> None:
                await engine.press(dispatcher, bot, first_chat, callbacks[first_chat])

            result = await count_presses(press, {"postgres": postgres, "redis": redis}, presses)
            engine.check_counts(bot.session, [first_chat], WARM_UP_PRESSES + presses)
            await engine.close_dispatcher(dispatcher)
        finally:
            database["HOST"], database["PORT"] = real
    return result


async def through_webhook(
    target: str, presses: int, first_chat: int, database_url: str, redis_url: str
) -> dict[str, float]:
    """Counts per press through a webhook server ("ours" or "peer") started for this."""
    from bench import webhook

    async with (
        RoundTripProxy(*upstream(database_url, 5432)) as postgres,
        RoundTripProxy(*upstream(redis_url, 6379), protocol="redis") as redis,
    ):
        proxied = (via(database_url, postgres), via(redis_url, redis))
        # The servers are started from a worker thread: this loop must keep serving the proxies.
        context = webhook.running(target, *proxied)
        deployment = await asyncio.to_thread(context.__enter__)
        try:
            chats = deployment.chats(1, first_chat)
            async with webhook.client() as http:
                await chats.start(http)

                async def press() -> None:
                    await chats.press(http, first_chat)

                result = await count_presses(press, {"postgres": postgres, "redis": redis}, presses)
                await chats.check(http, WARM_UP_PRESSES + presses)
        finally:
            await asyncio.to_thread(context.__exit__, None, None, None)
    return result


def measure_webhook(
    target: str, presses: int, first_chat: int, database_url: str, redis_url: str
) -> dict[str, float]:
    """:func:`through_webhook` from sync code (the runner)."""
    return asyncio.run(through_webhook(target, presses, first_chat, database_url, redis_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", choices=DISPATCHER_PATHS, required=True)
    parser.add_argument("--presses", type=int, default=20)
    parser.add_argument("--first-chat", type=int, default=int(time.time()) * 1000)
    args = parser.parse_args()
    from bench import engine

    if engine.setup_django() != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database")
    result: dict[str, Any] = asyncio.run(
        through_dispatcher(args.path, args.presses, args.first_chat)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
