"""The demo bot's background features: order status follows the shop, the counter ticks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import transaction
from django.test import override_settings

from botdialogs import background
from botdialogs.engine import bots
from botdialogs.models import DialogStack
from botdialogs.testing import (
    AsgiServer,
    CeleryBeat,
    RecordingSession,
    message_update,
    recording_bots,
)
from project.shop.models import Order
from tests.background.test_background_workers import TIMEOUT, celery_sender, started_chat  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
CHAT = 6100


@pytest.fixture
def session(settings: Any) -> Iterator[RecordingSession]:
    background_inline = {**settings.BOTDIALOGS, "BACKGROUND": "inline"}
    with recording_bots() as recording, override_settings(BOTDIALOGS=background_inline):
        yield recording


def feed(text: str) -> None:
    async def run() -> None:
        async with bots.bot_scope():
            bot = bots.get_bot("default")
            await bots.get_dispatcher("default").feed_raw_update(bot, message_update(CHAT, text))

    async_to_sync(run)()


def top_state() -> str:
    return DialogStack.objects.get(chat_id=CHAT, stack_id="").state


def test_status_change_updates_an_open_order_dialog(session: RecordingSession) -> None:
    feed("/start")
    order = Order.objects.create(telegram_user_id=CHAT, telegram_chat_id=CHAT, items={"Tea": 2})
    background.start("default", CHAT, CHAT, "OrderStatus:orders")
    assert session.texts()[-1] == f"Your orders:\n#{order.pk}: 2 x Tea - Placed"
    with transaction.atomic():
        order.status = Order.Status.COOKING
        order.save()
        assert session.texts()[-1].endswith("Placed")  # not before commit
    assert session.texts()[-1] == f"Your orders:\n#{order.pk}: 2 x Tea - Cooking"
    assert top_state() == "OrderStatus:orders"
    assert DialogStack.objects.get(chat_id=CHAT, stack_id="").depth == 2  # updated in place


def test_status_change_elsewhere_opens_the_order_dialog(session: RecordingSession) -> None:
    feed("/start")
    order = Order.objects.create(telegram_user_id=CHAT, telegram_chat_id=CHAT, items={"Soup": 1})
    order.status = Order.Status.ON_THE_WAY
    order.save()
    assert top_state() == "OrderStatus:orders"
    assert session.texts()[-1] == f"Your orders:\n#{order.pk}: 1 x Soup - On the way"
    order.save()  # same status: nothing new
    assert len([t for t in session.texts() if t.startswith("Your orders")]) == 1


def test_main_menu_has_counter_and_orders(session: RecordingSession) -> None:
    feed("/start")
    markup = session.calls[-1].reply_markup
    labels = [button.text for row in markup.inline_keyboard for button in row]
    assert labels == ["Order food", "Order food (nodes)", "Counter", "My orders"]


def test_counter_ticks_to_ten_from_a_celery_worker(
    redis_queued_server: AsgiServer,
    redis_env: dict[str, str],
    celery_worker: None,
    celery_sender: None,  # noqa: F811
) -> None:
    chat = started_chat(redis_queued_server, 7301)
    chat.press("Counter")
    chat.wait_for_text("Counter: 0", timeout=TIMEOUT)
    chat.press("Count to ten")
    # The ticks are dialog timers: beat's one-second tick has a worker fire them.
    with CeleryBeat("project", env={**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}):
        # Ticks due before beat came up fire together: only the last one is sure to show.
        final = chat.wait_for_text("Counter: 10", timeout=TIMEOUT)
    assert final.buttons == [["Count to ten"], ["Back to menu"]]  # idle again
    assert len(chat.bot_messages()) == 1  # every tick edited the one message


def test_admin_status_change_reaches_the_chat_through_a_worker(
    redis_queued_server: AsgiServer,
    celery_worker: None,
    celery_sender: None,  # noqa: F811
) -> None:
    chat = started_chat(redis_queued_server, 7302)
    order = Order.objects.create(telegram_user_id=7302, telegram_chat_id=7302, items={"Pizza": 1})
    chat.press("My orders")
    chat.wait_for_text(f"Your orders:\n#{order.pk}: 1 x Pizza - Placed", timeout=TIMEOUT)
    order.status = Order.Status.DELIVERED
    order.save()
    chat.wait_for_text(f"Your orders:\n#{order.pk}: 1 x Pizza - Delivered", timeout=TIMEOUT)
