"""The peer of the webhook benchmark: aiogram's own aiohttp webhook server, set up as its
documentation shows, with the same counter dialogs as ours.

A plain aiogram ``Dispatcher`` on ``RedisStorage`` (key builder with destiny, as
aiogram_dialog needs, and bot id, as ours uses) and ``RedisEventIsolation``, aiogram_dialog's
``setup_dialogs``, ``SimpleRequestHandler`` + ``setup_application`` on ``web.run_app``. The
Bot's session goes to the stub Bot API. ``handle_in_background=False``: the HTTP response
comes after the update was handled, as ours does inline, so one user's next press never
races the previous one and latency means the same on both sides.

    python -m bench.peer_server --port 8081 --api http://127.0.0.1:8765 \
        --redis redis://127.0.0.1:6379/6 --secret s3cret
"""

from __future__ import annotations

import argparse

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisEventIsolation, RedisStorage
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiogram_dialog import setup_dialogs
from aiohttp import web

from botdialogs.testing.bots import counter_router

WEBHOOK_PATH = "/webhook"
TOKEN = "4242:peer-bench"


def build_app(api_url: str, redis_url: str, secret: str) -> web.Application:
    """The peer's aiohttp application (aiogram's documented webhook setup)."""
    key_builder = DefaultKeyBuilder(
        with_bot_id=True, with_destiny=True, with_business_connection_id=True
    )
    storage = RedisStorage.from_url(redis_url, key_builder=key_builder)
    isolation = RedisEventIsolation(redis=storage.redis, key_builder=key_builder)
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    dispatcher.include_router(counter_router())
    setup_dialogs(dispatcher, events_isolation=isolation)
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url, is_local=True))
    bot = Bot(TOKEN, session=session)
    app = web.Application()
    SimpleRequestHandler(
        dispatcher=dispatcher, bot=bot, handle_in_background=False, secret_token=secret
    ).register(app, path=WEBHOOK_PATH)
    setup_application(app, dispatcher, bot=bot)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api", required=True, help="base URL of the (stub) Bot API")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    app = build_app(args.api, args.redis, args.secret)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
