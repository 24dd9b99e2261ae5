"""Real servers for the end-to-end tests: the demo site on uvicorn on the test database, and a
Celery worker (built on :mod:`botdialogs.testing`).

Web servers run for the whole session (one takes a second or two to start); each test gets
them through a function fixture that comes after ``transactional_db`` and waits, before the
test database is flushed, until their database sessions are quiet. A Celery worker is one
per test: stopped and reaped before the flush. (A session-long worker once hung a test's
flush on PostgreSQL after a Redis read timeout.)
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from botdialogs.testing import AsgiServer, CeleryWorker, server_env
from botdialogs.testing.databases import wait_for_quiet_database
from botdialogs.testing.queues import redis_url

APP = "project.asgi:application"
WEBHOOK_SECRET = "test-webhook-secret"
BROKER_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL")


@pytest.fixture(scope="session")
def test_db_env(django_db_setup: None, django_db_blocker: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a server process: this run's test database, the test secret."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        env = server_env(connection.settings_dict)
    env["TELEGRAM_WEBHOOK_SECRET"] = WEBHOOK_SECRET
    # Session servers live across tests: none may fire another test's dialog timers.
    env["TIMERS_IN_PROCESS"] = "0"
    env.pop("TELEGRAM_BOT_TOKEN", None)
    return env


@pytest.fixture(scope="session")
def inline_server_process(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site, its bot in inline mode (one process for the session); background
    actions are performed in it too (with REDIS_URL the demo would queue them to Celery)."""
    env = {**test_db_env, "BOT_MODE": "inline", "BOTDIALOGS_BACKGROUND": "inline"}
    with AsgiServer(APP, env=env) as server:
        yield server


@pytest.fixture
def inline_server(
    transactional_db: None, inline_server_process: AsgiServer
) -> Iterator[AsgiServer]:
    """The inline-mode server for one test; the test database is quiet before its flush."""
    yield inline_server_process
    wait_for_quiet_database()


@pytest.fixture(scope="session")
def eager_queued_server_process(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site, bot in queued mode, no broker: Celery runs the task in-process."""
    env = {k: v for k, v in test_db_env.items() if k not in BROKER_VARIABLES}
    with AsgiServer(APP, env={**env, "BOT_MODE": "queued"}) as server:
        yield server


@pytest.fixture
def eager_queued_server(
    transactional_db: None, eager_queued_server_process: AsgiServer
) -> Iterator[AsgiServer]:
    """The eager queued-mode server for one test; the database is quiet before its flush."""
    yield eager_queued_server_process
    wait_for_quiet_database()


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


@pytest.fixture
def celery_worker(
    transactional_db: None, redis_queued_server: AsgiServer, redis_env: dict[str, str]
) -> Iterator[CeleryWorker]:
    """A real Celery worker process whose bot talks to ``redis_queued_server``.

    It consumes when the test starts. One per test: it is stopped and reaped (a task it is
    running finishes first) before the test database is flushed, so no task of this test
    writes into the next one's rows or holds a lock the flush waits for.
    """
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    with CeleryWorker("project", env=env, name=name) as worker:
        # Ready before the test starts: its waits then measure the work, not the start.
        worker.wait_ready()
        yield worker
    wait_for_quiet_database()
