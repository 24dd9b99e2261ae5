"""Helpers of the reliability tests and bench scripts: the environment of the processes they
start, the state of their broker queue, and whether a process still runs."""

from __future__ import annotations

import json
import os

from tests.reliability.private_pg import PrivatePostgres
from tests.servers import BROKER_VARIABLES, WEBHOOK_SECRET

#: The settings module of every server and worker these tests start.
SETTINGS = "tests.reliability.settings"


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


def process_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of a server or worker of these tests: ``base`` (a database), the
    test settings and secret, no broker unless ``extra`` gives one."""
    env = {key: value for key, value in base.items() if key not in BROKER_VARIABLES}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("TELEGRAM_BOT_TOKEN", None)
    env.update(extra)
    return env


def queued_env(base: dict[str, str], broker: str, queue: str, **extra: str) -> dict[str, str]:
    """:func:`process_env` for queued bots on ``broker``'s ``queue``."""
    return process_env(base, BOT_MODE="queued", REDIS_URL=broker, RELIABILITY_QUEUE=queue, **extra)


def private_env(server: PrivatePostgres, database: str, **extra: str) -> dict[str, str]:
    """:func:`process_env` on a database of the private server."""
    return process_env(dict(os.environ), DATABASE_URL=server.url(database), **extra)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
