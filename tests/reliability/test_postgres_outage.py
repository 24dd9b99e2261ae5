"""PostgreSQL stopped (as in a crash) and started again while updates keep coming.

Users send numbered steps to the ``steps`` bot (inline mode) on a private PostgreSQL server;
every update is redelivered until accepted. Mid-run the server is stopped with ``pg_ctl -m
immediate``. While it is down the webhook must answer 5xx (a 200 would make Telegram forget
the update); once it is back, the very first deliveries must work without restarting the
web server (its pooled connections died with the old PostgreSQL), and every step must have
landed exactly once, in order.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg

from bench.scenarios import step_problems
from botdialogs.testing import AsgiServer, message_update
from botdialogs.testing.postgres import PrivatePostgres
from botdialogs.testing.webhook import Telegram
from tests.reliability.services import private_env
from tests.support.servers import APP, WEBHOOK_SECRET

USERS = 6
STEPS = 15
FIRST_CHAT = 9301


def stored_steps(url: str, chat_ids: list[int]) -> dict[int, list[int]]:
    """The ``steps`` bot's record per chat, read straight from the database at ``url``."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT chat_id, data FROM botdialogs_fsmrecord "
            "WHERE chat_id = ANY(%s) AND destiny = 'default'",
            (chat_ids,),
        ).fetchall()
    return {chat_id: data.get("steps", []) for chat_id, data in rows}


def test_postgres_stopped_and_started_under_load(
    private_postgres: PrivatePostgres, private_database: str
) -> None:
    deliveries_open = threading.Event()
    deliveries_open.set()
    telegram = Telegram(
        WEBHOOK_SECRET, deadline=120, before_attempt=lambda: deliveries_open.wait(120)
    )
    server = AsgiServer(APP, env=private_env(private_postgres, private_database))
    webhook = f"{server.url}/bots/steps/webhook/"
    chat_ids = [FIRST_CHAT + number for number in range(USERS)]

    def user(chat_id: int) -> None:
        """Deliver the chat's steps in order."""
        for step in range(1, STEPS + 1):
            update = message_update(chat_id, f"step {step}", update_id=chat_id * 100 + step)
            telegram.deliver(webhook, update)

    with server, ThreadPoolExecutor(max_workers=USERS) as users:
        pid = server.pid
        sending = [users.submit(user, chat_id) for chat_id in chat_ids]
        telegram.wait_for(lambda: telegram.accepted_count() >= USERS * STEPS // 3, timeout=120)

        private_postgres.stop("immediate")
        down = time.monotonic()
        telegram.wait_for(
            lambda: sum(attempt.started >= down for attempt in telegram.attempts) >= 2 * USERS,
            timeout=120,
        )
        # Hold new deliveries while PostgreSQL starts: the first ones after it must work.
        deliveries_open.clear()
        telegram.wait_for(lambda: telegram.in_flight == 0, timeout=60)
        starting = time.monotonic()
        private_postgres.start()
        up = time.monotonic()
        deliveries_open.set()

        for future in sending:
            future.result(timeout=180)
        assert server.running and server.pid == pid, "the web server was restarted"

    during = [a for a in telegram.attempts if a.started >= down and a.ended <= starting]
    after = [a for a in telegram.attempts if a.started >= up]
    assert len(during) >= USERS
    answers = sorted({attempt.status for attempt in during}, key=str)
    assert all(a.status is not None and 500 <= a.status < 600 for a in during), (
        f"while PostgreSQL was down the webhook answered {answers} (only 5xx is right)"
    )
    failed_after = [a for a in after if not a.accepted]
    assert after and not failed_after, f"after the restart: {failed_after[:5]}"
    stored = stored_steps(private_postgres.url(private_database), chat_ids)
    assert step_problems(stored, chat_ids, STEPS, ordered=True) == []
