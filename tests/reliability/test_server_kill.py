"""Inline mode: the web server SIGKILLed again and again while users order food.

Simulated users walk the demo's food order (Order food, Yes, items, Finish, Back to menu)
through local Telegram and the real webhook; every update is redelivered until the webhook
answers 2xx, as Telegram does. Meanwhile the uvicorn process is killed with SIGKILL at
random moments and started again. Afterwards every cart must have become exactly one order
with exactly its items (no press lost, none applied twice) and every user must be back in
the main menu. ``bench/server_kill.py`` is the same with more users and kills.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.scenarios import FoodOrderWalks, ServerKiller
from botdialogs.testing import AsgiServer
from botdialogs.testing.webhook import Telegram
from project.shop.models import Order
from tests.reliability.services import process_env
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

USERS = 6
CARTS = 2
KILLS = 6


def test_a_sigkilled_web_server_loses_no_step_and_doubles_none(
    test_db_env: dict[str, str],
) -> None:
    server = AsgiServer(APP, env=process_env(test_db_env, BOT_MODE="inline"))
    telegram = Telegram(WEBHOOK_SECRET, deadline=120)
    walks = FoodOrderWalks(
        telegram,
        lambda: f"{server.url}/bots/default/webhook/",
        users=USERS,
        carts=CARTS,
        first_user=9201,
        seed=20,
    )
    killer = ServerKiller([server], telegram, kills=KILLS, seed=21)
    with server, ThreadPoolExecutor(max_workers=1) as background:
        killing = background.submit(killer.run)
        failures = walks.run()
        killer.stop()
        killing.result(timeout=180)
        assert server.running

    stats = (
        f"{killer.kills} kills, {walks.updates_sent} updates, "
        f"{telegram.retried()} redeliveries, restarts took {killer.restart_seconds}"
    )
    assert [str(failure) for failure in failures] == [], stats
    assert killer.kills == KILLS, stats
    assert walks.problems() == [], stats
    assert Order.objects.count() == walks.checkouts(), stats
    assert telegram.retried() > 0, f"no delivery was interrupted: {stats}"
