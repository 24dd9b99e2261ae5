"""Dialog timers with real parts: Celery workers and beats on Redis, the demo site's webhook
and local Telegram; PostgreSQL in the second CI pass (SQLite runs one firer at a time).

Every fired timer sends one new message (a ``start`` with ``show_mode="send"``), so local
Telegram counts the effects: a timer fired twice would show one message too many. The demo
counter's ticks edit one message, so its edit count shows each tick landed once across a
worker restart; a failing timer is retried by workers whose Bot API is down, then failed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from django.db import connection
from django_celery_beat.models import PeriodicTask

from botdialogs import timers
from botdialogs.models import DialogTimer
from botdialogs.testing import (
    AsgiServer,
    CeleryBeat,
    CeleryWorker,
    ChatMessage,
    LocalChatClient,
    LocalTelegram,
    ManagedProcess,
    free_port,
    wait_until,
)
from botdialogs.testing.databases import wait_for_quiet_database
from project.bot.counter import TICKS, tick_key
from tests.background.test_background_workers import TIMEOUT, started_chat
from tests.support import timers_celery

pytestmark = pytest.mark.django_db(transaction=True)

#: Firers of the race: two of each on PostgreSQL; SQLite has no SKIP LOCKED (one worker).
WORKERS = 2


def worker_count() -> int:
    return WORKERS if connection.vendor == "postgresql" else 1


@pytest.fixture
def firers(
    transactional_db: None, redis_queued_server: AsgiServer, redis_env: dict[str, str]
) -> Iterator[dict[str, str]]:
    """Workers and two beats racing to fire timers; all stopped before the flush."""
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    processes: list[ManagedProcess] = [
        CeleryWorker("project", env=env, name=f"timers{n}@%h") for n in range(worker_count())
    ]
    processes += [CeleryBeat("project", env=env) for _ in range(2)]
    LocalTelegram(redis_queued_server.url).set_rate_limits(False)
    try:
        for process in processes:
            process.start()
        yield env
    finally:
        for process in processes:
            process.stop()
        LocalTelegram(redis_queued_server.url).set_rate_limits(True)
        wait_for_quiet_database()


def menu_timer(user_id: int, key: str | None = None, after: float = 0) -> str:
    """A timer whose firing sends one new menu message to the chat."""
    return timers.schedule(
        "default",
        user_id,
        user_id,
        "start",
        after=after,
        state="MainMenu:menu",
        mode="reset_stack",
        show_mode="send",
        key=key,
    )


def bot_message_count(chat: LocalChatClient) -> int:
    return sum(1 for message in chat.messages() if message.from_bot)


def all_fired() -> bool:
    return not DialogTimer.objects.exclude(status__in=["fired", "cancelled"]).exists()


def test_racing_workers_and_beats_fire_each_due_timer_exactly_once(
    redis_queued_server: AsgiServer, firers: dict[str, str]
) -> None:
    users = range(9201, 9209)
    chats = {user: started_chat(redis_queued_server, user) for user in users}
    before = {user: bot_message_count(chat) for user, chat in chats.items()}
    for user in users:
        for _ in range(3):
            menu_timer(user)
        menu_timer(user, key="replaced", after=3600)
        menu_timer(user, key="replaced")  # replaces the one above: fires once, now
        timers.cancel(menu_timer(user))  # cancelled: never fires

    wait_until(all_fired, timeout=TIMEOUT)

    assert DialogTimer.objects.filter(status="fired").count() == 4 * len(users)
    # Beat's DatabaseScheduler keeps the periodic jobs where the admin edits them.
    periodic = dict(PeriodicTask.objects.values_list("name", "expire_seconds"))
    assert periodic["botdialogs-timers"] == 5 and "botdialogs-cleanup" in periodic
    for user, chat in chats.items():
        wait_until(lambda chat=chat, user=user: bot_message_count(chat) >= before[user] + 4)
        assert bot_message_count(chat) == before[user] + 4, user


CLAIM_AND_HANG = """
import time
from botdialogs.timers.firing import claim_due
print("claimed", len(claim_due(lease=2.0)), flush=True)
time.sleep(600)  # a firer stuck before firing; the test SIGKILLs it
"""


def test_a_timer_claimed_by_a_firer_killed_with_sigkill_is_fired_by_another(
    redis_queued_server: AsgiServer, redis_env: dict[str, str], transactional_db: None
) -> None:
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    chat = LocalTelegram(redis_queued_server.url).chat(user_id=9301, first_name="Wo")
    with CeleryWorker("project", env=env):  # handles /start (queued mode)
        chat.send("/start")
        chat.wait_for_text("Hello, Wo! What would you like to do?", timeout=TIMEOUT)
    before = bot_message_count(chat)
    timer_id = menu_timer(9301)
    stuck = ManagedProcess([sys.executable, "manage.py", "shell", "-c", CLAIM_AND_HANG], env=env)
    try:
        stuck.start()
        wait_until(lambda: "claimed 1" in stuck.output(), timeout=TIMEOUT)
        stuck.kill()  # SIGKILL while holding the claim
        assert DialogTimer.objects.get(id=timer_id).status == "pending"
        with CeleryWorker("project", env=env), CeleryBeat("project", env=env):
            wait_until(all_fired, timeout=TIMEOUT)
            wait_until(lambda: bot_message_count(chat) >= before + 1, timeout=TIMEOUT)
    finally:
        stuck.stop()
        wait_for_quiet_database()
    timer = DialogTimer.objects.get(id=timer_id)
    assert (timer.status, timer.attempts) == ("fired", 2)
    assert bot_message_count(chat) == before + 1


def counter_value(message: ChatMessage) -> int | None:
    """The count a "Counter: N" message shows, else None."""
    prefix = "Counter: "
    return int(message.text[len(prefix) :]) if message.text.startswith(prefix) else None


def test_the_demo_counter_survives_a_worker_restart_with_each_tick_once(
    redis_queued_server: AsgiServer, redis_env: dict[str, str], transactional_db: None
) -> None:
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    chat = LocalTelegram(redis_queued_server.url).chat(user_id=9501, first_name="Wo")
    beat = CeleryBeat("project", env=env)
    first = CeleryWorker("project", env=env, name="counter1@%h")
    second = CeleryWorker("project", env=env, name="counter2@%h")
    try:
        beat.start()
        first.start()
        chat.send("/start")
        chat.wait_for_text("Hello, Wo! What would you like to do?", timeout=TIMEOUT)
        chat.press("Counter")
        shown = chat.wait_for_text("Counter: 0", timeout=TIMEOUT)
        chat.press("Count to ten")
        chat.wait_for(lambda m: (counter_value(m) or 0) >= 2, timeout=TIMEOUT)
        first.stop()  # SIGTERM mid-count: a deploy's restart
        left = DialogTimer.objects.filter(chat_id=9501, status="pending").count()
        assert 0 < left < TICKS  # stopped mid-count: the rest waits for another worker
        second.start()
        final = chat.wait_for_text(f"Counter: {TICKS}", timeout=TIMEOUT)
        wait_until(all_fired, timeout=TIMEOUT)
    finally:
        for process in (beat, first, second):
            process.stop()
        wait_for_quiet_database()

    ticks = DialogTimer.objects.filter(chat_id=9501)
    assert dict(ticks.values_list("key", "status")) == {
        tick_key(n): "fired" for n in range(1, TICKS + 1)
    }
    # Nothing runs any more: the chat holds every effect there will be. One message, edited
    # once by the press (its button hidden) and once by each tick; a lost tick would leave
    # an edit missing (each tick shows a new count).
    [message] = [m for m in chat.messages() if m.message_id == shown.message_id]
    assert final.message_id == shown.message_id and message.text == f"Counter: {TICKS}"
    assert message.edit_count == shown.edit_count + 1 + TICKS
    assert message.buttons == [["Count to ten"], ["Back to menu"]]


def test_a_failing_timer_is_retried_with_backoff_then_failed_by_real_workers(
    redis_queued_server: AsgiServer, redis_env: dict[str, str], transactional_db: None
) -> None:
    env = {**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}
    with CeleryWorker("project", env=env):  # handles /start (queued mode)
        chat = started_chat(redis_queued_server, 9601)
    before = len(chat.messages())
    timer_id = menu_timer(9601)
    # These workers' Bot API is a port nobody listens on: every send fails (network error).
    down = {**env, "LOCAL_TELEGRAM_URL": f"http://127.0.0.1:{free_port()}"}
    firing = [
        CeleryWorker("tests.support.timers_celery", env=down, name=f"failing{n}@%h")
        for n in range(worker_count())
    ]
    beat = CeleryBeat("project", env=env)
    try:
        for process in [*firing, beat]:
            process.start()
        wait_until(
            lambda: DialogTimer.objects.get(id=timer_id).status != "pending", timeout=TIMEOUT
        )
    finally:
        for process in [*firing, beat]:
            process.stop()
        wait_for_quiet_database()

    timer = DialogTimer.objects.get(id=timer_id)
    retries = timers_celery.RETRY_DELAYS
    assert (timer.status, timer.attempts) == ("failed", len(retries) + 1)
    assert "TelegramNetworkError" in timer.last_error
    # Each retry waited its delay: the last attempt came no sooner than their sum.
    assert timer.finished_at is not None
    assert (timer.finished_at - timer.created_at).total_seconds() >= sum(retries)
    assert len(chat.messages()) == before  # nothing reached the chat
