"""Background actions through real workers: a Celery worker and a Channels worker on Redis,
with the demo site (local Telegram) serving the Bot API calls they make."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

from botdialogs import background
from botdialogs.background.transport import deliver
from botdialogs.models import BackgroundAction, DialogStack
from botdialogs.testing import AsgiServer, LocalChatClient, LocalTelegram, wait_until
from botdialogs.testing.queues import redis_url

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT = 60


def top_state(chat_id: int) -> str | None:
    row = DialogStack.objects.filter(chat_id=chat_id, stack_id="").first()
    return row.state if row else None


@pytest.fixture
def celery_sender(settings: Any) -> Iterator[None]:
    """This process sends background actions to the Redis broker (never eagerly)."""
    from project.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager)

    def reset_pools() -> None:
        app._pool = None
        app.amqp._producer_pool = None

    reset_pools()
    app.conf.update(broker_url=redis_url(), task_always_eager=False)
    with override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "BACKGROUND": "celery"}):
        yield
    reset_pools()  # kombu keeps the Redis pool for the next test that sends
    app.conf.update(broker_url=saved[0], task_always_eager=saved[1])


@pytest.fixture
def channels_sender(settings: Any) -> Iterator[None]:
    """This process sends background actions over channels-redis."""
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url()]},
        }
    }
    with override_settings(
        CHANNEL_LAYERS=layers, BOTDIALOGS={**settings.BOTDIALOGS, "BACKGROUND": "channels"}
    ):
        yield


@pytest.fixture(scope="session")
def channels_worker(redis_queued_server: AsgiServer, redis_env: dict[str, str]) -> Iterator[None]:
    """``manage.py runworker botdialogs`` on channels-redis, its bot on the test server."""
    env = {
        **redis_env,
        "LOCAL_TELEGRAM_URL": redis_queued_server.url,
        "BOTDIALOGS_BACKGROUND": "channels",
    }
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runworker", "botdialogs"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.returncode not in (0, -15):
                log.seek(0)
                print(log.read().decode(errors="replace"))


def started_chat(server: AsgiServer, user_id: int) -> LocalChatClient:
    chat = LocalTelegram(server.url).chat(user_id=user_id, first_name="Wo")
    chat.send("/start")
    chat.wait_for_text("Hello, Wo! What would you like to do?", timeout=TIMEOUT)
    wait_until(lambda: top_state(user_id) == "MainMenu:menu", timeout=TIMEOUT)
    return chat


def walk_the_dialog(chat: LocalChatClient, user_id: int) -> None:
    """start, switch_to, done: each changes the stored stack and the chat."""
    background.start("default", user_id, user_id, "FoodOrder:hungry")
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    wait_until(lambda: top_state(user_id) == "FoodOrder:hungry", timeout=TIMEOUT)

    with pytest.raises(RuntimeError), transaction.atomic():
        background.switch_to("default", user_id, user_id, "FoodOrder:cart")
        raise RuntimeError("rolled back")

    background.switch_to("default", user_id, user_id, "FoodOrder:not_hungry")
    chat.wait_for_text("Come back when you are hungry!", timeout=TIMEOUT)
    wait_until(lambda: top_state(user_id) == "FoodOrder:not_hungry", timeout=TIMEOUT)

    background.done("default", user_id, user_id)
    wait_until(lambda: top_state(user_id) == "MainMenu:menu", timeout=TIMEOUT)
    # Actions run in order: the rolled-back switch never reached the worker.
    assert not any("Add something" in m.text for m in chat.messages())
    done = BackgroundAction.objects.filter(chat_id=user_id, status="done")
    wait_until(lambda: done.count() == 3, timeout=TIMEOUT)


def test_celery_worker_performs_actions(
    redis_queued_server: AsgiServer, celery_worker: None, celery_sender: None
) -> None:
    chat = started_chat(redis_queued_server, 7101)
    walk_the_dialog(chat, 7101)


def test_celery_redelivered_action_runs_once(
    redis_queued_server: AsgiServer, celery_worker: None, celery_sender: None
) -> None:
    chat = started_chat(redis_queued_server, 7102)
    action = background.build_action("start", "default", 7102, 7102, state="FoodOrder:hungry")
    deliver(action)
    deliver(action)  # a retry or a redelivery of the same action
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    marker = background.build_action("update", "default", 7102, 7102, data={"x": 1})
    deliver(marker)
    wait_until(
        lambda: BackgroundAction.objects.filter(action_id=marker["id"], status="done").exists(),
        timeout=TIMEOUT,
    )
    assert BackgroundAction.objects.get(action_id=action["id"]).attempts == 1
    assert sum("Are you hungry?" in m.text for m in chat.messages()) == 1


def test_celery_stale_state_is_rejected_once(
    redis_queued_server: AsgiServer, celery_worker: None, celery_sender: None
) -> None:
    started_chat(redis_queued_server, 7103)
    action = background.build_action("start", "default", 7103, 7103, state="FoodOrder:hungry")
    action["state"] = "FoodOrder:renamed"
    deliver(action)
    record = wait_until(
        lambda: BackgroundAction.objects.filter(action_id=action["id"], status="rejected").first(),
        timeout=TIMEOUT,
    )
    assert "FoodOrder:renamed" in record.error and record.attempts == 1
    assert top_state(7103) == "MainMenu:menu"


def test_channels_worker_performs_actions(
    redis_queued_server: AsgiServer,
    celery_worker: None,
    channels_worker: None,
    channels_sender: None,
) -> None:
    chat = started_chat(redis_queued_server, 7201)
    walk_the_dialog(chat, 7201)
