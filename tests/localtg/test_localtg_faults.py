"""Fault injection in local Telegram, and what botdialogs does when Telegram fails.

First the faults themselves, over HTTP on a real ASGI server: 5xx answers, hangs past the
client's timeout, 429 floods, for a number of calls or a time. Then the demo bot under each
fault, through its real webhook: the webhook answers 503 (nothing committed), so Telegram
delivers the update again, and the redelivery shows the user one answer; a background action
fails its attempt and its Celery task runs it again, once.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from django.test import Client
from django.utils import timezone

from botdialogs import background
from botdialogs.background.transport import deliver
from botdialogs.engine.bots import bot_token
from botdialogs.localtg.models import LocalFault, LocalMessage
from botdialogs.localtg.objects import message_json
from botdialogs.models import BackgroundAction, DialogStack, ProcessedUpdate
from botdialogs.testing import AsgiServer, LocalTelegram, LocalTelegramError, wait_until

# celery_sender is a fixture: imported, it serves this module's tests too.
from tests.background.test_background_workers import TIMEOUT, celery_sender, started_chat  # noqa: F401
from tests.support.servers import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)

MENU = "Hello, {}! What would you like to do?"


def call(server: AsgiServer, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """One Bot API call of the default bot as JSON over HTTP: (HTTP status, body)."""
    return LocalTelegram(server.url).call_bot_api(bot_token("default"), method, **params)


def open_chat(server: AsgiServer, user_id: int) -> int:
    """A chat the bot may write to (the user exists and has not blocked it)."""
    return LocalTelegram(server.url).open_chat(user_id, first_name="Fay").user_id


def redeliver(server: AsgiServer, update: dict[str, Any]) -> int:
    """POST an update to the bot's webhook again, as Telegram does after a non-2xx answer."""
    request = urllib.request.Request(
        f"{server.url}/bots/default/webhook/",
        data=json.dumps(update).encode(),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def user_update(update_id: int, chat_id: int, message_id: int) -> dict[str, Any]:
    """The Update local Telegram delivered for a user's message."""
    message = LocalMessage.objects.get(chat__chat_id=chat_id, message_id=message_id)
    return {"update_id": update_id, "message": message_json(message)}


def bot_texts(chat_id: int) -> list[str]:
    return list(
        LocalMessage.objects.filter(chat__chat_id=chat_id, from_bot=True).values_list(
            "text", flat=True
        )
    )


# -- the faults ------------------------------------------------------------------------------
def test_a_server_error_fault_fails_that_many_calls_and_stores_nothing(
    inline_server: AsgiServer,
) -> None:
    chat_id = open_chat(inline_server, 8201)
    telegram = LocalTelegram(inline_server.url)
    fault = telegram.set_fault("server_error", calls=2, status=502, methods=["sendMessage"])
    assert fault is not None and fault["calls_left"] == 2
    assert call(inline_server, "getMe")[0] == 200  # other methods are not hit
    for _ in range(2):
        assert call(inline_server, "sendMessage", chat_id=chat_id, text="lost") == (
            502,
            {"ok": False, "error_code": 502, "description": "Bad Gateway"},
        )
    assert call(inline_server, "sendMessage", chat_id=chat_id, text="through")[0] == 200
    assert bot_texts(chat_id) == ["through"]
    assert LocalFault.objects.get().calls_failed == 2


async def test_faults_are_what_aiogram_sees_from_telegram(inline_server: AsgiServer) -> None:
    await_chat = open_chat(inline_server, 8202)
    telegram = LocalTelegram(inline_server.url)
    api = TelegramAPIServer.from_base(f"{inline_server.url}/localtg", is_local=True)
    # A client that gives up after 2 s, like aiogram's 60 s default, only sooner.
    bot = Bot(bot_token("default"), session=AiohttpSession(api=api, timeout=2))
    try:
        telegram.set_fault("flood", calls=1, retry_after=7)
        with pytest.raises(TelegramRetryAfter) as flood:
            await bot.send_message(await_chat, "flood")
        assert flood.value.retry_after == 7

        telegram.set_fault("server_error", calls=1)
        with pytest.raises(TelegramServerError, match="Internal Server Error"):
            await bot.send_message(await_chat, "5xx")

        telegram.set_fault("timeout", calls=1, hang=6)
        with pytest.raises(TelegramNetworkError, match="timeout"):
            await bot.send_message(await_chat, "hangs")

        telegram.set_fault(None)
        assert (await bot.send_message(await_chat, "fine")).text == "fine"
    finally:
        await bot.session.close()
    # No failed call left a message behind: Telegram performed none of them.
    assert await LocalMessage.objects.filter(chat__chat_id=await_chat).acount() == 1


def test_a_fault_for_a_time_ends_when_its_time_is_up(inline_server: AsgiServer) -> None:
    chat_id = open_chat(inline_server, 8203)
    telegram = LocalTelegram(inline_server.url)
    fault = telegram.set_fault("server_error", seconds=3600)
    assert fault is not None and fault["active"] and fault["calls_left"] is None
    assert call(inline_server, "sendMessage", chat_id=chat_id, text="a")[0] == 500
    assert call(inline_server, "sendMessage", chat_id=chat_id, text="b")[0] == 500
    LocalFault.objects.update(until=timezone.now() - timedelta(seconds=1))
    assert call(inline_server, "sendMessage", chat_id=chat_id, text="c")[0] == 200
    assert telegram.set_fault(None) is None
    assert not LocalFault.objects.exists()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"kind": "meteor"}, "kind"),
        ({"kind": "flood", "calls": 0}, "calls"),
        ({"kind": "timeout", "hang": 3600}, "hang"),
        ({"kind": "server_error", "status": 404}, "status"),
        ({"kind": "server_error", "colour": "red"}, "colour"),
    ],
)
def test_a_bad_fault_is_a_clear_400_and_changes_nothing(
    inline_server: AsgiServer, body: dict[str, Any], words: str
) -> None:
    LocalTelegram(inline_server.url).set_fault("flood", calls=3)
    request = urllib.request.Request(
        f"{inline_server.url}/localtg/api/bots/default/faults/",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    assert words in json.loads(refused.value.read())["description"]
    assert LocalFault.objects.get().kind == "flood"  # the fault before stays as it was


def test_an_unknown_bot_has_no_faults(inline_server: AsgiServer) -> None:
    with pytest.raises(LocalTelegramError, match="404"):
        LocalTelegram(inline_server.url, bot="nobody").set_fault("flood")


def test_the_chat_page_has_the_fault_control(client: Client) -> None:
    from botdialogs.localtg import chats

    chats.open_chat("default", 8204, {"first_name": "Fay"})
    page = client.get("/localtg/default/8204/").content.decode()
    assert 'id="fault-form"' in page and "localtg/faults.js" in page
    assert "/localtg/api/bots/default/faults/" in page
    assert client.get("/localtg/api/bots/default/faults/").json() == {"ok": True, "result": None}


# -- botdialogs under faults -----------------------------------------------------------------
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "server_error", "calls": 1},
        {"kind": "server_error", "calls": 1, "status": 502},
        {"kind": "flood", "calls": 1, "retry_after": 3},
    ],
    ids=["500", "502", "429"],
)
def test_a_failed_bot_api_call_fails_the_webhook_and_the_redelivery_answers_once(
    inline_server: AsgiServer, fault: dict[str, Any]
) -> None:
    telegram = LocalTelegram(inline_server.url)
    chat = telegram.chat(user_id=8210, first_name="Gil")
    telegram.set_fault(**fault)
    delivered = chat.send("/start")
    # The handler's sendMessage failed: nothing committed, so the webhook asks for a retry.
    assert delivered["webhook_status"] == 503
    assert bot_texts(8210) == []
    assert not ProcessedUpdate.objects.filter(update_id=delivered["update_id"]).exists()
    assert not DialogStack.objects.filter(chat_id=8210).exists()

    update = user_update(delivered["update_id"], 8210, delivered["message_id"])
    assert redeliver(inline_server, update) == 200
    assert bot_texts(8210) == [MENU.format("Gil")]
    assert DialogStack.objects.get(chat_id=8210, stack_id="").state == "MainMenu:menu"
    # A third delivery of the same update is acknowledged and not run again.
    assert redeliver(inline_server, update) == 200
    assert bot_texts(8210) == [MENU.format("Gil")]
    assert ProcessedUpdate.objects.filter(update_id=delivered["update_id"]).count() == 1


def test_a_bot_api_call_that_times_out_fails_the_webhook_and_the_redelivery_answers_once(
    inline_server: AsgiServer,
) -> None:
    """aiogram gives up after its 60 s client timeout; the call hangs 65 s (never performed)."""
    from botdialogs.localtg import chats

    telegram = LocalTelegram(inline_server.url)
    telegram.set_fault("timeout", calls=1)  # hang: 65 s
    # Recorded as local Telegram records a user's message; this test delivers it itself, with
    # a client that waits longer than aiogram does.
    update, _ = chats.record_user_message("default", 8211, "/start", {"first_name": "Hal"})
    assert redeliver(inline_server, update) == 503
    assert bot_texts(8211) == []
    assert redeliver(inline_server, update) == 200
    assert bot_texts(8211) == [MENU.format("Hal")]
    assert LocalFault.objects.get().calls_failed == 1


@pytest.mark.usefixtures("celery_worker", "celery_sender")
def test_a_background_action_that_meets_a_fault_is_retried_by_its_task_once(
    redis_queued_server: AsgiServer,
) -> None:
    chat = started_chat(redis_queued_server, 8212)
    LocalTelegram(redis_queued_server.url).set_fault("server_error", calls=1)
    action = background.build_action("start", "default", 8212, 8212, state="FoodOrder:hungry")
    deliver(action)
    record = wait_until(
        lambda: BackgroundAction.objects.filter(action_id=action["id"], status="done").first(),
        timeout=TIMEOUT,
    )
    chat.wait_for_text("Are you hungry?", timeout=TIMEOUT)
    assert record.attempts == 2  # the failed attempt, then the task's retry
    assert LocalFault.objects.get().calls_failed == 1
    assert sum("Are you hungry?" in m.text for m in chat.messages()) == 1
    assert DialogStack.objects.get(chat_id=8212, stack_id="").state == "FoodOrder:hungry"


@pytest.fixture
def timers_here(inline_server: AsgiServer, settings: Any) -> Any:
    """Timers fired in this process, its bot talking to the inline server's local Telegram."""
    from django.test import override_settings

    values = {**settings.BOTDIALOGS, "LOCAL_TELEGRAM_URL": inline_server.url}
    with override_settings(BOTDIALOGS=values):
        yield LocalTelegram(inline_server.url)


def fire_due_now() -> dict[str, int]:
    from asgiref.sync import async_to_sync

    from botdialogs.engine import bots
    from botdialogs.timers import firing

    async def run() -> dict[str, int]:
        async with bots.bot_scope():
            return (await firing.fire_due(wait=False)).outcomes

    return async_to_sync(run)()


@pytest.mark.parametrize(
    "fault",
    [{"kind": "server_error", "calls": 1}, {"kind": "flood", "calls": 1, "retry_after": 30}],
    ids=["500", "429-retry-after"],
)
def test_a_timer_that_meets_a_fault_is_retried_after_its_backoff_and_fires_once(
    timers_here: LocalTelegram, fault: dict[str, Any]
) -> None:
    from botdialogs import timers
    from botdialogs.models import DialogTimer
    from botdialogs.timers.firing import RETRY_DELAYS

    chat = timers_here.chat(user_id=8214, first_name="Ida")
    chat.send("/start")
    chat.wait_for_text(MENU.format("Ida"))
    timer_id = timers.schedule("default", 8214, 8214, "start", after=0, state="FoodOrder:hungry")
    timers_here.set_fault(**fault)
    before = timezone.now()
    assert fire_due_now() == {"retry": 1}
    timer = DialogTimer.objects.get(id=timer_id)
    assert (timer.status, timer.attempts) == ("pending", 1)
    # Not before the back-off, nor before the 429's retry_after.
    wait = max(RETRY_DELAYS[0], fault.get("retry_after", 0))
    assert timer.due_at >= before + timedelta(seconds=wait)
    assert "Are you hungry?" not in bot_texts(8214)

    # The back-off has passed (moved, not waited for): the retry fires it, once.
    DialogTimer.objects.filter(id=timer_id).update(due_at=timezone.now())
    assert fire_due_now() == {"fired": 1}
    assert DialogTimer.objects.get(id=timer_id).status == "fired"
    assert bot_texts(8214).count("Are you hungry?") == 1
    assert fire_due_now() == {}
