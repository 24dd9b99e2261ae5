"""The demo bot's timers on the real webhook with the embedded defaults (no broker, no beat:
the web server fires them in-process): the counter stops with its dialog, the food order
reminds an idle user and closes, and an answer cancels both."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from botdialogs.models import DialogStack, DialogTimer
from botdialogs.testing import AsgiServer, LocalChatClient, LocalTelegram, wait_until
from botdialogs.testing.databases import wait_for_quiet_database
from tests.support.servers import APP, BROKER_VARIABLES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]
TIMEOUT = 30


@pytest.fixture(scope="module")
def short_delays_server(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The demo site without a broker, with the food order's delays shortened."""
    env = {k: v for k, v in test_db_env.items() if k not in BROKER_VARIABLES}
    env.update(
        {"DEMO_FOOD_REMIND_AFTER": "2", "DEMO_FOOD_CLOSE_AFTER": "4", "TIMERS_IN_PROCESS": "1"}
    )
    with AsgiServer(APP, env=env) as server:
        yield server


@pytest.fixture
def server(transactional_db: None, short_delays_server: AsgiServer) -> Iterator[AsgiServer]:
    yield short_delays_server
    wait_for_quiet_database()


def top_state(user_id: int) -> str:
    row = DialogStack.objects.filter(chat_id=user_id, stack_id="").first()
    return row.state if row is not None else ""


def timer_statuses(user_id: int, prefix: str) -> dict[str, str]:
    timers = DialogTimer.objects.filter(chat_id=user_id, key__startswith=prefix)
    return dict(timers.values_list("key", "status"))


def menu(server: AsgiServer, user_id: int) -> LocalChatClient:
    chat = LocalTelegram(server.url).chat(user_id=user_id, first_name="Wo")
    chat.send("/start")
    chat.wait_for_text("Hello, Wo! What would you like to do?", timeout=TIMEOUT)
    return chat


def test_the_counter_ticks_through_timers_and_stops_when_its_dialog_closes(
    server: AsgiServer,
) -> None:
    chat = menu(server, 8101)
    chat.press("Counter")
    chat.wait_for_text("Counter: 0", timeout=TIMEOUT)
    chat.press("Count to ten")
    chat.wait_for_text("Counter: 2", timeout=TIMEOUT)
    chat.press("Back to menu")
    shown = chat.wait_for_text("Hello, Wo! What would you like to do?", timeout=TIMEOUT)

    statuses = timer_statuses(8101, "counter:")
    # The close cancelled every tick still pending, in its own transaction: none can fire.
    assert "pending" not in statuses.values()
    assert len(statuses) == 10 and list(statuses.values()).count("cancelled") >= 5
    assert top_state(8101) == "MainMenu:menu"
    assert chat.last() == shown


def test_the_food_order_reminds_an_idle_user_then_closes(server: AsgiServer) -> None:
    chat = menu(server, 8102)
    chat.press("Order food")
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    chat.wait_for_text("Still hungry?", timeout=TIMEOUT)
    wait_until(lambda: top_state(8102) == "MainMenu:menu", timeout=TIMEOUT)
    assert timer_statuses(8102, "food:") == {"food:remind": "fired", "food:close": "fired"}


def test_an_answer_cancels_both_food_timers(server: AsgiServer) -> None:
    chat = menu(server, 8103)
    chat.press("Order food")
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    chat.press("Yes")
    chat.wait_for_text("Add something to your cart:\nYour cart is empty.", timeout=TIMEOUT)
    assert timer_statuses(8103, "food:") == {"food:remind": "cancelled", "food:close": "cancelled"}
    assert top_state(8103) == "FoodOrder:cart"
