"""Real servers for end-to-end tests: uvicorn on the test database, and a Celery worker.

Session-scoped (a server takes a second or two to start); tests that use them take
``transactional_db`` so rows are committed where the server process can see them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections

from botdialogs.testing import AsgiServer, CeleryWorker, server_env

APP = "project.asgi:application"
WEBHOOK_SECRET = "test-webhook-secret"
BROKER_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL")


def redis_url() -> str:
    """The Redis of this run (CI gives REDIS_URL; the worker test always needs one)."""
    return os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def test_db_env(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a server process: this run's test database, the test secret."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        env = server_env(connection.settings_dict)
    env["TELEGRAM_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return env


@pytest.fixture(scope="session")
def inline_server(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site, its bot in inline mode."""
    with AsgiServer(APP, env={**test_db_env, "BOT_MODE": "inline"}) as server:
        yield server


@pytest.fixture(scope="session")
def eager_queued_server(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site, bot in queued mode, no broker: Celery runs the task in-process."""
    env = {k: v for k, v in test_db_env.items() if k not in BROKER_VARIABLES}
    with AsgiServer(APP, env={**env, "BOT_MODE": "queued"}) as server:
        yield server


@pytest.fixture(scope="session")
def redis_env(test_db_env: dict[str, str]) -> dict[str, str]:
    """A queued-mode environment on Redis (broker and results), with stale tasks purged."""
    env = {k: v for k, v in test_db_env.items() if k not in BROKER_VARIABLES}
    env.update({"BOT_MODE": "queued", "REDIS_URL": redis_url()})
    purge = [sys.executable, "-m", "celery", "-A", "project", "purge", "-f"]
    subprocess.run(purge, env=env, check=True, capture_output=True, timeout=60)
    return env


@pytest.fixture(scope="session")
def redis_queued_server(redis_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site, bot in queued mode, tasks sent to Redis."""
    with AsgiServer(APP, env=redis_env) as server:
        yield server


@pytest.fixture(scope="session")
def celery_worker(redis_queued_server: AsgiServer, redis_env: dict[str, str]) -> Iterator[None]:
    """A real Celery worker process whose bot talks to ``redis_queued_server``."""
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    with CeleryWorker("project", env=env):
        yield


@pytest.fixture
async def thread_connections_closed() -> AsyncIterator[None]:
    """Close the DB connections async ORM calls opened in asgiref's thread.

    pytest-django closes the main thread's connection only; a PostgreSQL test database
    with a session left open cannot be dropped at the end of the run.
    """
    yield
    await sync_to_async(connections.close_all)()
