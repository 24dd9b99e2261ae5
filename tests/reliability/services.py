"""The environment of the servers and workers the reliability tests start (their broker
queue, processes and databases: :mod:`botdialogs.testing`)."""

from __future__ import annotations

import os

from botdialogs.testing import processes
from botdialogs.testing.postgres import PrivatePostgres
from tests.support.servers import BROKER_VARIABLES, WEBHOOK_SECRET

#: The settings module of every server and worker these tests start.
SETTINGS = "tests.reliability.settings"


def process_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of a server or worker of these tests: ``base`` (a database), the
    test settings and secret, no broker or bot token unless ``extra`` gives one."""
    drop = (*BROKER_VARIABLES, "TELEGRAM_BOT_TOKEN")
    secret = {"TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET}
    return processes.process_env(base, SETTINGS, drop=drop, **secret, **extra)


def queued_env(base: dict[str, str], broker: str, queue: str, **extra: str) -> dict[str, str]:
    """:func:`process_env` for queued bots on ``broker``'s ``queue``."""
    return process_env(base, BOT_MODE="queued", REDIS_URL=broker, RELIABILITY_QUEUE=queue, **extra)


def private_env(server: PrivatePostgres, database: str, **extra: str) -> dict[str, str]:
    """:func:`process_env` on a database of the private server."""
    return process_env(dict(os.environ), DATABASE_URL=server.url(database), **extra)
