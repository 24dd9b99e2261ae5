"""A Stars payment whose webhook delivery is killed mid-commit, then delivered again, is
recorded once: the demo site on uvicorn, PostgreSQL, the server SIGKILLed while its round
trip 2 (the payment, the order marked paid, the update id, COMMIT) waits on a row lock."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection

from botdialogs.models import ProcessedUpdate, StarPayment
from botdialogs.storage.connections import connection_params
from botdialogs.testing import AsgiServer
from botdialogs.testing.databases import wait_for_quiet_database
from botdialogs.testing.processes import wait_until
from botdialogs.testing.updates import next_message_id, user
from botdialogs.testing.webhook import Telegram, post_update
from project.shop.models import Order
from tests.reliability.services import process_env
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

USER = 9400


def payment_update(update_id: int, order: Order) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": next_message_id(),
            "date": int(time.time()),
            "chat": {"id": USER, "type": "private", "first_name": "Ann"},
            "from": user(USER),
            "successful_payment": {
                "currency": "XTR",
                "total_amount": order.price_in_stars,
                "invoice_payload": f"order:{order.pk}",
                "telegram_payment_charge_id": f"charge-{update_id}",
                "provider_payment_charge_id": "",
            },
        },
    }


@pytest.mark.parametrize("commit", ["lost with the server", "landed after the kill"])
def test_a_payment_killed_mid_commit_and_delivered_again_is_recorded_once(
    test_db_env: dict[str, str], commit: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the server's commit is held with a PostgreSQL row lock")
    import psycopg

    order = Order.objects.create(telegram_user_id=USER, telegram_chat_id=USER, items={"Tea": 2})
    update = payment_update(880_000 + len(commit), order)
    server = AsgiServer(APP, env=process_env(test_db_env, BOT_MODE="inline"))
    url = lambda: f"{server.url}/bots/default/webhook/"  # noqa: E731 - the port of each start
    with (
        server,
        psycopg.connect(**connection_params()) as holder,
        # Another session: one transaction sees one snapshot of pg_stat_activity.
        psycopg.connect(**connection_params(), autocommit=True) as watcher,
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        # Our lock on the order: the server's round trip 2 waits on it, mid-commit.
        holder.execute(
            f"SELECT 1 FROM {Order._meta.db_table} WHERE id = %s FOR UPDATE", (order.pk,)
        )
        first = pool.submit(post_update, url(), update, WEBHOOK_SECRET)

        def waiting_commit() -> int | None:
            assert not first.done(), first.result()
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{StarPayment._meta.db_table}%",),
            ).fetchone()
            return row[0] if row else None

        backend = wait_until(waiting_commit, timeout=30)
        server.kill()
        if commit == "lost with the server":
            # As when the crash takes the machine: the transaction dies with its session.
            watcher.execute("SELECT pg_terminate_backend(%s)", (backend,))
        holder.rollback()  # the lock goes; a living session finishes its COMMIT now
        assert not first.result().accepted  # Telegram got no answer: it will deliver again
        if commit == "lost with the server":
            wait_until(lambda: not _alive(watcher, backend), timeout=30)
            assert StarPayment.objects.count() == 0
            assert not ProcessedUpdate.objects.filter(update_id=update["update_id"]).exists()
        else:  # the session outlived its client: the redelivery will find it done
            wait_until(lambda: StarPayment.objects.exists(), timeout=30)

        server.start()
        telegram = Telegram(WEBHOOK_SECRET, deadline=60)
        telegram.deliver(url, update)
        telegram.deliver(url, update)  # and once more, for good measure

    wait_for_quiet_database()  # the killed server's session is gone before the flush
    order.refresh_from_db()
    payments = list(StarPayment.objects.values_list("telegram_payment_charge_id", "status"))
    assert payments == [(f"charge-{update['update_id']}", "paid")]
    assert order.paid_stars == order.price_in_stars == 2


def _alive(watcher: Any, pid: int) -> bool:
    return bool(watcher.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone())
