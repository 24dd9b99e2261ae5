"""Broadcasts: one background action for many chats, within Telegram's limits.

Telegram allows a bot about 30 messages a second, and a chat about one. A
:class:`RateLimiter` hands out send slots under ``BROADCAST_RATE`` per bot and one a second
per chat: in Redis when ``BROADCAST_REDIS_URL`` is set (every worker on every machine shares
it), in this process otherwise. A 429 pauses the whole bot for ``retry_after`` and the chat
is tried again; a passing failure (5xx, a timeout) is tried again up to
``SEND_ATTEMPTS`` times; a 403 marks the chat ``is_blocked``. A chat marked blocked (by that
403 or by Telegram's ``my_chat_member``, even while the broadcast runs) is skipped without a
call: each chat's row is read when the broadcast reaches it.

Every chat's action has the id ``b<broadcast>-<chat>`` recorded once in
:class:`~botdialogs.models.BackgroundAction`, so a broadcast that is run again (a retried
task, a restarted worker) only reaches the chats it had not reached.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from botdialogs.background.actions import build_action
from botdialogs.background.performing import DUPLICATE, finish, note_attempt, perform_claimed
from botdialogs.conf import get_settings
from botdialogs.exceptions import BadBackgroundAction
from botdialogs.models import BackgroundAction, Broadcast, TelegramChat

__all__ = ["RateLimiter", "arun", "create", "rate_limiter", "run", "send"]

logger = logging.getLogger("botdialogs.background.broadcast")
CHAT_INTERVAL = 1.0  # seconds between two messages to one chat
CONCURRENCY = 8  # chats in flight at once per run
SEND_ATTEMPTS = 3  # tries of one chat on 5xx or a network failure (1 s, then 2 s apart)
Progress = Callable[[Broadcast], None]


class RateLimiter(Protocol):
    """Send slots for one bot: ``acquire`` waits for the next one a chat may use."""

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to ``chat_id`` is within the limits."""

    async def pause(self, seconds: float) -> None:
        """Telegram said 429: nobody sends for ``seconds``."""

    async def close(self) -> None:
        """Release connections."""


class LocalRateLimiter:
    """Slots spaced ``1/rate`` apart in this process (all threads and loops share it)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._lock = threading.Lock()
        self._next = 0.0
        self._paused_until = 0.0
        self._chats: dict[int, float] = {}

    async def acquire(self, chat_id: int) -> None:
        """Reserve the next slot, then wait for it."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next, self._paused_until, self._chats.get(chat_id, 0.0))
            self._next = slot + self.interval
            self._chats[chat_id] = slot + CHAT_INTERVAL
            if len(self._chats) > 10_000:
                self._chats = {c: t for c, t in self._chats.items() if t > now}
        await asyncio.sleep(slot - now)

    async def pause(self, seconds: float) -> None:
        """Push every later slot past the pause."""
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def close(self) -> None:
        """Nothing to close."""


# Slot reservation in Redis time (one clock for every machine), in one atomic step.
_ACQUIRE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'),
    tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(redis.call('GET', KEYS[3]) or '0'))
redis.call('SET', KEYS[1], slot + tonumber(ARGV[1]), 'PX', 60000)
redis.call('SET', KEYS[2], slot + tonumber(ARGV[2]), 'PX', 60000)
return slot - now
"""
_PAUSE = """
local t = redis.call('TIME')
local until_ = t[1] * 1000 + math.floor(t[2] / 1000) + tonumber(ARGV[1])
if until_ > tonumber(redis.call('GET', KEYS[1]) or '0') then
    redis.call('SET', KEYS[1], until_, 'PX', tonumber(ARGV[1]) + 60000)
end
return until_
"""


class RedisRateLimiter:
    """The same slots kept in Redis, shared by every worker of every machine."""

    def __init__(self, url: str, bot_name: str, rate: float) -> None:
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url)
        self.interval_ms = 1000.0 / rate
        self.prefix = f"botdialogs:ratelimit:{bot_name}"
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._pause = self.redis.register_script(_PAUSE)

    async def acquire(self, chat_id: int) -> None:
        """Reserve the next slot in Redis, then wait for it."""
        keys = [f"{self.prefix}:next", f"{self.prefix}:chat:{chat_id}", f"{self.prefix}:pause"]
        wait_ms = await self._acquire(keys=keys, args=[self.interval_ms, CHAT_INTERVAL * 1000])
        await asyncio.sleep(float(wait_ms) / 1000)

    async def pause(self, seconds: float) -> None:
        """Every worker waits ``seconds`` before its next slot."""
        await self._pause(keys=[f"{self.prefix}:pause"], args=[int(seconds * 1000)])

    async def close(self) -> None:
        """Close the connection pool (it belongs to this loop)."""
        await self.redis.aclose()


_local_limiters: dict[str, LocalRateLimiter] = {}


def rate_limiter(bot_name: str) -> RateLimiter:
    """The limiter of bot ``bot_name``: Redis when BROADCAST_REDIS_URL is set."""
    settings = get_settings()
    if settings.broadcast_redis_url:
        return RedisRateLimiter(settings.broadcast_redis_url, bot_name, settings.broadcast_rate)
    return _local_limiters.setdefault(bot_name, LocalRateLimiter(settings.broadcast_rate))


def create(
    chats: QuerySet[TelegramChat],
    action: str,
    *,
    bot: str = "default",
    **parameters: Any,
) -> Broadcast:
    """A pending broadcast of ``action`` (start/switch_to/update/done and its parameters) to
    the bot's chats in ``chats``. Send it with :func:`send` (or ``manage.py broadcast``)."""
    from botdialogs.engine.bots import bot_id

    template = build_action(action, bot, 0, 0, **parameters)
    pks = list(chats.filter(bot_id=bot_id(bot)).order_by("pk").values_list("pk", flat=True))
    return Broadcast.objects.create(bot_name=bot, action=template, chat_pks=pks, total=len(pks))


def send(broadcast: Broadcast) -> None:
    """Run the broadcast after the current transaction commits: a Celery task when there is
    a broker, in this process otherwise."""
    from botdialogs import task_queue

    def go() -> None:
        if task_queue.runs_in_process():
            run(broadcast.pk)
        else:
            task_queue.enqueue(task_queue.RUN_BROADCAST, broadcast.pk)

    transaction.on_commit(go)


def run(broadcast_id: int, *, progress: Progress | None = None) -> Broadcast:
    """Send a broadcast to every chat it has not reached yet (sync: tasks and commands)."""
    from botdialogs.engine.sync import call_async

    return call_async(arun, broadcast_id, progress=progress)


async def arun(broadcast_id: int, *, progress: Progress | None = None) -> Broadcast:
    """:func:`run` for async code."""
    broadcast = await Broadcast.objects.aget(pk=broadcast_id)
    if broadcast.status in (Broadcast.Status.DONE, Broadcast.Status.CANCELLED):
        return broadcast
    await Broadcast.objects.filter(pk=broadcast_id).aupdate(
        status=Broadcast.Status.RUNNING, started_at=broadcast.started_at or timezone.now()
    )
    limiter = rate_limiter(broadcast.bot_name)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for pk in broadcast.chat_pks:
        queue.put_nowait(pk)

    async def worker() -> None:
        while not queue.empty():
            pk = queue.get_nowait()
            outcome = await _reach_chat(broadcast, pk, limiter)
            if outcome is not None:
                await Broadcast.objects.filter(pk=broadcast_id).aupdate(**{outcome: F(outcome) + 1})
                if progress is not None:
                    progress(await Broadcast.objects.aget(pk=broadcast_id))

    try:
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    except BaseException as error:
        await Broadcast.objects.filter(pk=broadcast_id).aupdate(
            status=Broadcast.Status.FAILED, error=repr(error)[:2000]
        )
        raise
    finally:
        await limiter.close()
    await Broadcast.objects.filter(pk=broadcast_id).aupdate(
        status=Broadcast.Status.DONE, finished_at=timezone.now()
    )
    return await Broadcast.objects.aget(pk=broadcast_id)


async def _reach_chat(broadcast: Broadcast, chat_pk: int, limiter: RateLimiter) -> str | None:
    """Reach one chat; the counter to increase, or None when an earlier run reached it."""
    chat = await TelegramChat.objects.filter(pk=chat_pk).afirst()
    action = {**broadcast.action, "id": f"b{broadcast.pk}-{chat_pk}"}
    if chat is not None:
        action.update(user_id=chat.user_id, chat_id=chat.chat_id)
    if not await sync_to_async(note_attempt)(action, broadcast.pk):
        return None
    if chat is None or chat.is_blocked:
        await sync_to_async(finish)(action["id"], BackgroundAction.Status.REJECTED, "skipped")
        return "skipped"
    attempts = 0
    while True:
        await limiter.acquire(chat.chat_id)
        attempts += 1
        try:
            outcome = await perform_claimed(action)
        except TelegramRetryAfter as error:
            await limiter.pause(error.retry_after)
            continue
        except (TelegramServerError, TelegramNetworkError) as error:
            if attempts < SEND_ATTEMPTS:
                # Nothing was committed for this chat: the same action, after a back-off.
                logger.info("Broadcast %s to chat %s: %r, again", broadcast.pk, chat.chat_id, error)
                await asyncio.sleep(attempts * CHAT_INTERVAL)
                continue
            logger.warning("Broadcast %s to chat %s failed: %s", broadcast.pk, chat.chat_id, error)
            await sync_to_async(finish)(action["id"], BackgroundAction.Status.RETRY, repr(error))
            return "failed"
        except TelegramForbiddenError as error:
            await TelegramChat.objects.filter(pk=chat_pk).aupdate(is_blocked=True)
            await sync_to_async(finish)(action["id"], BackgroundAction.Status.REJECTED, str(error))
            return "failed"
        except BadBackgroundAction as error:
            await sync_to_async(finish)(action["id"], BackgroundAction.Status.REJECTED, str(error))
            return "failed"
        except TelegramAPIError as error:  # 400s, 5xx, network: this chat failed
            logger.warning("Broadcast %s to chat %s failed: %s", broadcast.pk, chat.chat_id, error)
            await sync_to_async(finish)(action["id"], BackgroundAction.Status.RETRY, repr(error))
            return "failed"
        return None if outcome == DUPLICATE else "sent"
