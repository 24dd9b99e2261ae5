"""The Bot and Dispatcher registry: the only place aiogram objects are built.

- A :class:`~aiogram.Dispatcher` per bot per process (it holds no loop-bound state).
- A :class:`~aiogram.Bot` per bot per *event loop*: its aiohttp session belongs to the loop
  it was opened on. Sync code (views, Celery tasks, commands) runs async work on short-lived
  loops through :func:`botdialogs.engine.sync.call_async`, which opens a :func:`bot_scope`:
  bots made inside it are closed when it ends, so no call ever uses a session of a dead
  loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import threading
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage
from aiogram.utils.token import extract_bot_id
from aiogram_dialog import setup_dialogs
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from botdialogs.conf import BotSettings, get_settings
from botdialogs.engine.session import BotSession

_lock = threading.Lock()
_dispatchers: dict[str, Dispatcher] = {}
_storage: BaseStorage | None = None
_isolation: BaseEventIsolation | None = None
_loop_bots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Bot]] = (
    weakref.WeakKeyDictionary()
)
_scope: contextvars.ContextVar[dict[str, Bot] | None] = contextvars.ContextVar(
    "botdialogs_bot_scope", default=None
)

#: Local bots get ids in [2**52, 2**53): above every real Telegram id (those have at most 52
#: significant bits), inside a signed 64-bit column, and exact as a JavaScript number.
LOCAL_BOT_ID_BASE = 2**52
LOCAL_BOT_ID_BITS = 52


def local_bot_id(name: str) -> int:
    """The stable id of a bot that talks to local Telegram (derived from its name).

    A 52-bit BLAKE2 hash of the name: two names meet with odds of about 1 in 4*10**15 per
    pair (CRC32 gave "plumless" and "buckeroo" one id), and the botdialogs.E015 check
    refuses configured bots that share an id anyway.
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"botdialogs.bot").digest()
    return LOCAL_BOT_ID_BASE + int.from_bytes(digest, "big") % 2**LOCAL_BOT_ID_BITS


def bot_token(name: str) -> str:
    """The bot's token: the configured one, or a local token naming the bot."""
    bot = get_settings().bot(name)
    return bot.token or f"{local_bot_id(name)}:local-{name}"


def bot_id(name: str) -> int:
    """The Telegram id of bot ``name`` (the token's prefix)."""
    return extract_bot_id(bot_token(name))


def bot_name_for_id(telegram_bot_id: int) -> str | None:
    """The configured name of the bot with this id, or None."""
    for name in get_settings().bots:
        if bot_id(name) == telegram_bot_id:
            return name
    return None


def load_router(name: str) -> Router:
    """Import the bot's ROUTER: a Router, or a callable that returns a new one."""
    target = import_string(get_settings().bot(name).router)
    router = target if isinstance(target, Router) else target()
    if not isinstance(router, Router):
        raise TypeError(f"{get_settings().bot(name).router} gave {router!r}, not a Router")
    return router


def _build(backend: str, config: dict[str, Any]) -> Any:
    cls = import_string(backend)
    factory = getattr(cls, "from_url", None) if "url" in config else None
    if factory is not None:
        config = dict(config)
        return factory(config.pop("url"), **_redis_options(cls, config))
    return cls(**config)


def _redis_options(cls: type, config: dict[str, Any]) -> dict[str, Any]:
    from aiogram.fsm.storage.base import DefaultKeyBuilder
    from aiogram.fsm.storage.redis import RedisStorage

    # aiogram_dialog needs the destiny in Redis keys, or stacks and contexts collide.
    if issubclass(cls, RedisStorage) and "key_builder" not in config:
        # Several bots share one Redis: the bot id must be in the key as well.
        config["key_builder"] = DefaultKeyBuilder(
            with_bot_id=True, with_destiny=True, with_business_connection_id=True
        )
    return config


def get_storage() -> BaseStorage:
    """The FSM storage of every Dispatcher in this process (``BOTDIALOGS['STORAGE']``)."""
    global _storage
    with _lock:
        if _storage is None:
            setting = get_settings().storage
            _storage = _build(setting.backend or "", setting.config)
        return _storage


def get_event_isolation() -> BaseEventIsolation:
    """The event isolation that fits the storage, unless ``EVENT_ISOLATION`` names one."""
    global _isolation
    storage = get_storage()
    with _lock:
        if _isolation is None:
            setting = get_settings().event_isolation
            if setting.backend:
                _isolation = _build(setting.backend, setting.config)
            else:
                _isolation = _default_isolation(storage)
        return _isolation


def _default_isolation(storage: BaseStorage) -> BaseEventIsolation:
    from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage

    from botdialogs.storage import DjangoStorage
    from botdialogs.storage.isolation import LocalEventIsolation

    if isinstance(storage, DjangoStorage):
        return storage.create_isolation()
    if isinstance(storage, RedisStorage):
        return RedisEventIsolation(redis=storage.redis, key_builder=storage.key_builder)
    return LocalEventIsolation()


def get_dispatcher(name: str) -> Dispatcher:
    """The bot's Dispatcher, built once per process with aiogram_dialog set up."""
    with _lock:
        dispatcher = _dispatchers.get(name)
    if dispatcher is not None:
        return dispatcher
    from botdialogs.engine import middleware, recovery
    from botdialogs.i18n import middleware as languages
    from botdialogs.payments import middleware as payments

    settings = get_settings().bot(name)
    storage = get_storage()
    isolation = get_event_isolation()
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation, name=name)
    middleware.install(dispatcher, storage, isolation)
    payments.install(dispatcher)  # pre-checkout before the FSM middleware, payments inside
    languages.install(dispatcher)  # inside the FSM middleware: the chat row is read by then
    recovery.install(dispatcher)
    router = load_router(name)
    dispatcher.include_router(router)
    setup_dialogs(dispatcher, events_isolation=isolation)
    dispatcher["botdialogs_bot_name"] = settings.name
    with _lock:
        # Another thread may have won the race; keep one Dispatcher per process.
        existing = _dispatchers.setdefault(name, dispatcher)
    return existing


#: Makes the Bot API session of a new Bot from its settings (see :func:`set_session_factory`).
SessionFactory = Callable[[BotSettings], BaseSession]
_session_factory: SessionFactory | None = None


def set_session_factory(factory: SessionFactory | None) -> SessionFactory | None:
    """Give every Bot built from now on the session ``factory(bot_settings)`` returns; None
    restores the real one (Telegram, or local Telegram). Returns the factory it replaces.

    The seam for tests (``botdialogs.testing.recording_bots`` installs a session that records
    the Bot API calls): Bots built before are forgotten, so none keeps the old session.
    """
    global _session_factory
    with _lock:
        previous, _session_factory = _session_factory, factory
        _loop_bots.clear()
    return previous


def _new_bot(settings: BotSettings) -> Bot:
    if _session_factory is not None:
        session = _session_factory(settings)
    elif settings.is_local:
        from botdialogs.engine.local_api import api_base_url

        session = BotSession(api=TelegramAPIServer.from_base(api_base_url(), is_local=True))
    else:
        session = BotSession()
    return Bot(token=bot_token(settings.name), session=session, default=DefaultBotProperties())


def get_bot(name: str) -> Bot:
    """The bot's Bot for the running event loop (or the enclosing :func:`bot_scope`)."""
    settings = get_settings().bot(name)
    scoped = _scope.get()
    if scoped is not None:
        bot = scoped.get(name)
        if bot is None:
            bot = scoped[name] = _new_bot(settings)
        return bot
    loop = asyncio.get_running_loop()
    with _lock:
        per_loop = _loop_bots.setdefault(loop, {})
        bot = per_loop.get(name)
        if bot is None:
            bot = per_loop[name] = _new_bot(settings)
    return bot


@asynccontextmanager
async def bot_scope() -> AsyncIterator[None]:
    """Bots taken inside this block are new and are closed when it ends.

    For code on a loop that is about to die (a Celery task, a sync view crossing into async).
    """
    if _scope.get() is not None:
        yield
        return
    bots: dict[str, Bot] = {}
    token = _scope.set(bots)
    try:
        yield
    finally:
        _scope.reset(token)
        for bot in bots.values():
            await bot.session.close()
        await _release_loop_resources()


async def _release_loop_resources() -> None:
    """Close what the storage and isolation opened on this (short-lived) loop."""
    from aiogram.fsm.storage.redis import RedisStorage

    with _lock:
        storage, isolation = _storage, _isolation
    if isolation is not None:
        await isolation.close()
    if storage is not None and hasattr(storage, "database"):
        await storage.close()  # DjangoStorage: this loop's own PostgreSQL connections
    if isinstance(storage, RedisStorage):
        # redis-py's asyncio connections belong to the loop that opened them.
        await storage.redis.connection_pool.disconnect()


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    # Like channels' layer manager: this registry forgets what it built from old settings.
    if setting in ("BOTDIALOGS", "DATABASES"):
        reset()


def reset() -> None:
    """Forget every cached Dispatcher, storage and Bot (settings changed, or tests)."""
    global _storage, _isolation
    with _lock:
        discard = getattr(getattr(_storage, "database", None), "discard", None)
        if discard is not None:
            discard()  # DjangoStorage on PostgreSQL: every loop's idle connections
        _dispatchers.clear()
        _storage = None
        _isolation = None
        _loop_bots.clear()
