"""Who watches the live monitor, known cheaply by every process that publishes.

Publishing code asks :func:`watching` on every event, so the answer must cost nothing:

- watchers connected to this process are a counter (:func:`join` / :func:`leave`), read
  directly. With the in-memory channel layer (one process) that is the whole story.
- with a shared channel layer (channels-redis), a watcher's consumer also keeps its channel
  name in a Redis sorted set, scored with the time its presence expires (``PRESENCE_TTL``
  ahead, renewed by :func:`heartbeat` every ``HEARTBEAT`` seconds while connected, removed
  on disconnect). Another process (a Celery worker) counts the unexpired members at most
  once per ``CHECK_INTERVAL`` and keeps the answer in between. A watcher whose process died
  stops counting when its score passes; the key itself expires when nobody renews it.

So a publisher learns of a new watcher within a second and of a gone one within
``PRESENCE_TTL`` (publishing into an empty group meanwhile is harmless). The count is one
``ZCOUNT`` with short timeouts; when Redis does not answer, the process assumes nobody
watches and asks again after ``RETRY_AFTER`` seconds, so the update path never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

logger = logging.getLogger("botdialogs.monitor")

#: Seconds a publisher trusts its last count of remote watchers.
CHECK_INTERVAL = 1.0
#: Seconds a watcher's presence lasts without a heartbeat.
PRESENCE_TTL = 30.0
#: Seconds between a connected watcher's heartbeats.
HEARTBEAT = 10.0
#: Seconds before asking Redis again after it failed to answer.
RETRY_AFTER = 10.0
#: Seconds a presence query may take (connect and answer) before it counts as "nobody".
REDIS_TIMEOUT = 0.25

_KEY = "botdialogs:monitor:watchers"


@dataclass
class _Presence:
    #: Watchers connected to this process.
    local: int = 0
    #: The event loop of this process's newest watcher (the in-memory layer sends there).
    loop: asyncio.AbstractEventLoop | None = None
    #: Whether another process has a watcher, as last counted, and when to count again.
    remote: bool = False
    next_check: float = 0.0


_presence = _Presence()
_lock = threading.Lock()
#: The shared Redis of the channel layer: (client, key), None for a process-local layer;
#: unset until first needed.
_shared: Any = ...


def watching() -> bool:
    """Whether anyone watches the monitor (here, or in another process): cheap, see above."""
    if _presence.local:
        return True
    now = time.monotonic()
    if now < _presence.next_check:
        return _presence.remote
    _presence.next_check = now + CHECK_INTERVAL
    _presence.remote = _count_remote(now)
    return _presence.remote


def local_loop() -> asyncio.AbstractEventLoop | None:
    """The loop of this process's watchers, while any is connected."""
    return _presence.loop if _presence.local else None


def shared_layer() -> bool:
    """Whether the channel layer reaches other processes (so presence is kept in Redis)."""
    return _shared_store() is not None


def _count_remote(now: float) -> bool:
    store = _shared_store()
    if store is None:
        return False
    client, key = store
    try:
        return bool(client.zcount(key, time.time(), "+inf"))
    except Exception:
        logger.debug("Could not count monitor watchers in Redis", exc_info=True)
        _presence.next_check = now + RETRY_AFTER
        return False


def _shared_store() -> tuple[Any, str] | None:
    """The Redis of a channel-layer that spans processes, with the presence key."""
    global _shared
    if _shared is not ...:
        return _shared
    with _lock:
        if _shared is ...:
            _shared = _connect()
    return _shared


def _connect() -> tuple[Any, str] | None:
    from channels.layers import InMemoryChannelLayer, get_channel_layer

    layer = get_channel_layer()
    hosts = getattr(layer, "hosts", None)
    if layer is None or isinstance(layer, InMemoryChannelLayer) or not hosts:
        return None
    import redis

    # channels-redis decodes its hosts to dicts: {"address": url} or {"host": h, "port": p}.
    # Presence lives on its first host (each publisher and watcher picks the same one).
    host = dict(hosts[0])
    address = host.pop("address", None)
    if not address:
        address = f"redis://{host.get('host', 'localhost')}:{host.get('port', 6379)}"
    client = redis.Redis.from_url(
        str(address), socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    prefix = getattr(layer, "prefix", "asgi")
    return client, f"{prefix}:{_KEY}"


# -- the watcher's side (the consumer) -------------------------------------------------------
async def join(channel_name: str) -> None:
    """Count a watcher connected on this loop, and announce it to other processes."""
    _presence.local += 1
    _presence.loop = asyncio.get_running_loop()
    await heartbeat(channel_name)


async def heartbeat(channel_name: str) -> None:
    """Renew a connected watcher's presence in Redis (nothing to do for a local layer)."""
    store = _shared_store()
    if store is None:
        return
    client, key = store

    def renew() -> None:
        now = time.time()
        pipe = client.pipeline()
        pipe.zadd(key, {channel_name: now + PRESENCE_TTL})
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.expire(key, int(PRESENCE_TTL) + 1)
        pipe.execute()

    try:
        await asyncio.to_thread(renew)
    except Exception:
        logger.debug("Could not renew a monitor watcher's presence", exc_info=True)


async def leave(channel_name: str) -> None:
    """Forget a watcher that disconnected."""
    _presence.local = max(0, _presence.local - 1)
    store = _shared_store()
    if store is None:
        return
    client, key = store
    try:
        await asyncio.to_thread(client.zrem, key, channel_name)
    except Exception:
        logger.debug("Could not remove a monitor watcher's presence", exc_info=True)


def reset() -> None:
    """Forget every cached answer (tests, and a change of CHANNEL_LAYERS)."""
    global _shared
    _presence.remote = False
    _presence.next_check = 0.0
    with _lock:
        _shared = ...


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHANNEL_LAYERS":
        reset()
