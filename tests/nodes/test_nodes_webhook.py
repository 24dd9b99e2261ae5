"""Nodes through the real webhook: the demo's nodes-style food order end to end, 50
concurrent presses of one user across two server processes (one on SQLite), and moving a
user from site code through a real Celery worker."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction

from botdialogs.models import BackgroundAction, NodeState
from botdialogs.testing import (
    AsgiServer,
    LocalChatClient,
    LocalTelegram,
    callback_update,
    wait_until,
)
from botdialogs.testing.databases import wait_for_quiet_database
from project.bot.nodes import Cart, ChoosingFood, food_nodes
from project.shop.models import Order
from tests.background.test_background_workers import celery_sender, started_chat  # noqa: F401
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 60
PRESSES = 50


def node_of(user_id: int) -> NodeState | None:
    return NodeState.objects.filter(user_id=user_id, router="food").first()


def to_the_cart(server: AsgiServer, user_id: int) -> LocalChatClient:
    """A user who chose the nodes-style order from the menu and said they are hungry."""
    chat = LocalTelegram(server.url).chat(user_id=user_id, first_name="Ann")
    chat.send("/start")
    chat.wait_for_text("Hello, Ann! What would you like to do?", timeout=TIMEOUT)
    chat.press("Order food (nodes)")  # a dialog hands the user to a node
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    chat.press("Yes")
    chat.wait_for_text("Add something to your cart:\nYour cart is empty.", timeout=TIMEOUT)
    return chat


def test_nodes_food_order_end_to_end(inline_server: AsgiServer) -> None:
    chat = to_the_cart(inline_server, 8801)
    for item, shown in (("Pizza", "1 x Pizza"), ("Pizza", "2 x Pizza"), ("Tea", "1 x Tea")):
        chat.press(f"+ {item}")
        chat.wait_for(lambda m, shown=shown: shown in m.text, timeout=TIMEOUT)
    chat.press("Finish")
    placed = chat.wait_for(lambda m: m.text.startswith("Order #"), timeout=TIMEOUT)
    order = Order.objects.get(telegram_user_id=8801)
    assert placed.text == f"Order #{order.pk} placed. Thank you!"
    assert (order.items, order.bot_name, order.telegram_chat_id) == (
        {"Pizza": 2, "Tea": 1},
        "default",
        8801,
    )
    row = node_of(8801)
    assert row is not None and (row.node_key, row.data) == ("food.placed", {"order_id": order.pk})
    chat.press("Back to menu")  # a node starts the menu dialog again
    wait_until(
        lambda: (
            sum("What would you like to do?" in m.text for m in chat.bot_messages()) >= 1
            and getattr(node_of(8801), "node_key", None) == "food.menu"
        ),
        timeout=TIMEOUT,
    )


def post_update(server_url: str, update: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{server_url}/bots/default/webhook/",
        data=json.dumps(update).encode(),
        method="POST",
        headers={
            "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        return int(response.status)


@pytest.fixture
def second_server(inline_server: AsgiServer, test_db_env: dict[str, str]) -> Iterator[str | None]:
    """On PostgreSQL a second inline server process on the same database; on SQLite none
    (one process serves a SQLite bot)."""
    if connection.vendor != "postgresql":
        yield None
        return
    with AsgiServer(APP, env={**test_db_env, "BOT_MODE": "inline"}) as server:
        yield server.url
    wait_for_quiet_database()


def test_fifty_concurrent_presses_of_one_user_lose_nothing(
    inline_server: AsgiServer, second_server: str | None
) -> None:
    to_the_cart(inline_server, 8802)
    servers = [inline_server.url, *([second_server] if second_server else [])]
    updates = [callback_update(8802, "n:add:pizza") for _ in range(PRESSES)]
    for number, update in enumerate(updates):
        # Apart from the ids local Telegram gives its own updates (a shared id is a duplicate).
        update["update_id"] = 900_000_000 + number
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda n: post_update(servers[n % len(servers)], updates[n]), range(PRESSES))
        )
    assert statuses == [200] * PRESSES
    row = node_of(8802)
    assert row is not None and row.node_key == "food.cart"
    assert row.data == {"items": {"pizza": PRESSES}}


def test_site_code_moves_a_user_after_commit_through_celery(
    redis_queued_server: AsgiServer,
    celery_worker: None,
    celery_sender: None,  # noqa: F811
) -> None:
    chat = started_chat(redis_queued_server, 8803)
    with pytest.raises(RuntimeError), transaction.atomic():
        food_nodes.user(8803).to(ChoosingFood(Cart(items={"soup": 1})))
        raise RuntimeError("rolled back: never sent")
    with transaction.atomic():
        action_id = food_nodes.user(8803).to(ChoosingFood(Cart(items={"tea": 2})))
    record = wait_until(
        lambda: BackgroundAction.objects.filter(
            action_id=action_id, status__in=("done", "rejected")
        ).first(),
        timeout=TIMEOUT,
    )
    assert (record.status, record.error) == ("done", "")
    chat.wait_for_text("Add something to your cart:\n2 x Tea", timeout=TIMEOUT)
    row = node_of(8803)
    assert row is not None and (row.node_key, row.data) == ("food.cart", {"items": {"tea": 2}})
    assert not any("Soup" in m.text for m in chat.messages())
    # The user goes on from there with the buttons the moved-to node sent (the menu dialog
    # still open below does not take them).
    chat.press("+ Tea")
    chat.wait_for_text("Add something to your cart:\n3 x Tea", timeout=TIMEOUT)
