"""Queued mode under load: two web processes and two Celery workers on one database (one
worker on SQLite, which serves one process).

Users send numbered steps to the ``steps`` bot, each update delivered once, twice to one web
process, twice to both, or twice at the same moment to both (:data:`DUPLICATES`). Every
update must be handled exactly once: every chat ends with steps 1..n, none missing, none
twice. ``bench/load_run.py`` is the same at full size, with throughput.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from django.db import connection

from bench.scenarios import DUPLICATES, LoadRun
from botdialogs.testing import AsgiServer, CeleryWorker
from botdialogs.testing.queues import broker_idle
from botdialogs.testing.webhook import Telegram
from tests.reliability.services import queued_env
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

USERS = 50
UPDATES = 10


def test_two_web_processes_and_two_workers_handle_every_update_once(
    test_db_env: dict[str, str], broker: str, queue: str
) -> None:
    env = queued_env(test_db_env, broker, queue)
    # In queued mode only workers touch dialog state. SQLite serves one such process (its chat
    # locks are in-process): there, one worker; on PostgreSQL, two race for every chat.
    workers = 2 if connection.vendor == "postgresql" else 1
    with ExitStack() as running:
        servers = [running.enter_context(AsgiServer(APP, env=env)) for _ in range(2)]
        for number, server in enumerate(servers[:workers]):
            worker_env = {**env, "LOCAL_TELEGRAM_URL": server.url}
            running.enter_context(CeleryWorker("project", env=worker_env, name=f"w{number}@%h"))
        load = LoadRun(
            Telegram(WEBHOOK_SECRET, deadline=60),
            [server.url for server in servers],
            users=USERS,
            updates=UPDATES,
            first_user=9501,
            seed=6,
        )
        result = load.run(lambda: broker_idle(broker, queue), threads=16, timeout=150)

    assert result.problems == [], f"{len(result.problems)} chats wrong: {result.problems[:5]}"
    assert all(result.duplicates[how] > 0 for how in DUPLICATES), result.duplicates
    assert result.posts > USERS * UPDATES
