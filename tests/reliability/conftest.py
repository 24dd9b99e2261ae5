"""Fixtures of the reliability tests: a private PostgreSQL, PgBouncer, a broker queue of our
own, and the environment of the processes the tests start (and kill).

Servers and workers are started inside the tests (or function fixtures that come after the
database), so each is stopped and reaped before pytest-django flushes the database.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.pgbouncer import PgBouncer
from tests.reliability.private_pg import PrivatePostgres
from tests.servers import BROKER_VARIABLES, WEBHOOK_SECRET, redis_url

SETTINGS = "tests.reliability.settings"
TEMPLATE = "botdialogs_template"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this run's own, with the project's tables migrated into a
    template database (tests copy it: :func:`private_database`)."""
    server = PrivatePostgres()
    try:
        server.start()
        server.create_database(TEMPLATE)
        server.migrate(TEMPLATE, settings=SETTINGS)
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_database(private_postgres: PrivatePostgres, request: pytest.FixtureRequest) -> str:
    """A fresh, migrated database on the private server; returns its name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    private_postgres.create_database(name, template=TEMPLATE)
    return name


@pytest.fixture
def pgbouncer(private_postgres: PrivatePostgres) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling in front of the private server."""
    with PgBouncer(private_postgres.port, pool_mode="transaction") as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def broker() -> str:
    """The Redis broker of this run (``REDIS_URL``, else the local default)."""
    return redis_url()


@pytest.fixture
def queue(broker: str) -> Iterator[str]:
    """A Celery queue of this test's own, emptied afterwards."""
    name = f"reliability-{uuid.uuid4().hex[:10]}"
    yield name
    purge_queue(broker, name)


def purge_queue(broker: str, name: str) -> None:
    """Drop the queue's waiting tasks and the unacknowledged ones that belong to it."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        client.delete(name)
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


@pytest.fixture
def gate_dir(tmp_path: Path) -> Path:
    """The folder of the ``gate`` bot's markers."""
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder


def private_env(server: PrivatePostgres, database: str, **extra: str) -> dict[str, str]:
    """:func:`process_env` on a database of the private server."""
    return process_env(dict(os.environ), DATABASE_URL=server.url(database), **extra)
