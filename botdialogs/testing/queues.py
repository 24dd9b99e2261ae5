"""The Redis broker of a test run: which one, and the state of a Celery queue on it."""

from __future__ import annotations

import json
import os

#: The Redis database tests use when neither TEST_REDIS_URL nor REDIS_URL names one: apart
#: from a site's usual database 0, so a test run never consumes or purges a site's tasks.
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"


def redis_url() -> str:
    """The Redis of this run: ``TEST_REDIS_URL``, else ``REDIS_URL``, else database 15."""
    return os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or DEFAULT_TEST_REDIS_URL


def purge_queue(broker: str, name: str) -> None:
    """Drop the queue: its waiting tasks, the unacknowledged ones and kombu's bindings."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
        for tag, payload in client.hgetall("unacked").items():
            if json.loads(payload)[2] == name:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
    finally:
        client.close()


def broker_idle(broker: str, name: str) -> bool:
    """True when the queue holds no task, waiting or taken by a worker (unacknowledged)."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        if client.llen(name):
            return False
        return all(json.loads(payload)[2] != name for payload in client.hvals("unacked"))
    finally:
        client.close()
