"""The webhook endpoint, end to end on a real ASGI server with local Telegram behind it."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiogram import F, Router
from aiogram.methods import SendMessage
from aiogram.types import Message
from asgiref.sync import sync_to_async
from django.test import AsyncClient, override_settings
from django.utils import timezone

from botdialogs.engine import bots
from botdialogs.exceptions import (
    BadUpdate,
    StorageUnavailable,
    UnknownBot,
    UpdateTooLarge,
    WebhookForbidden,
)
from botdialogs.http import webhook
from botdialogs.localtg.models import LocalMessage
from botdialogs.models import DialogStack, ProcessedUpdate, TelegramChat
from botdialogs.storage.cleanup import delete_expired_updates
from botdialogs.testing import AsgiServer, LocalTelegram, message_update, wait_until
from tests.support.servers import WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, Any]:
    """Send raw bytes; returns (status, parsed JSON body or None)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, content = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, content = error.code, error.read()
    try:
        return status, json.loads(content)
    except ValueError:
        return status, None


def hook(server: AsgiServer, name: str = "default") -> str:
    return f"{server.url}/bots/{name}/webhook/"


# The test process's own settings (the servers get WEBHOOK_SECRET from their environment).
WEBHOOK_SECRET_OF_SETTINGS = None
SECRET = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}


def stored_rows() -> int:
    return (
        ProcessedUpdate.objects.count()
        + TelegramChat.objects.count()
        + DialogStack.objects.count()
        + LocalMessage.objects.count()
    )


def test_start_and_button_press_go_through_the_webhook(inline_server: AsgiServer) -> None:
    chat = LocalTelegram(inline_server.url).chat(user_id=5001, first_name="Ann")
    assert chat.send("/start")["webhook_status"] == 200
    menu = chat.wait_for_text("Hello, Ann! What would you like to do?")
    assert ["Order food"] in menu.buttons

    chat.press("Order food")
    hungry = chat.wait_for_text("Are you hungry?")
    assert hungry.buttons == [["Yes", "No"]]
    assert (hungry.message_id, hungry.edit_count) == (menu.message_id, 1)  # edited in place
    assert chat.read()["callback_answers"], "the press was answered"

    chat.press("No")
    chat.wait_for_text("Come back when you are hungry!")
    assert ProcessedUpdate.objects.filter(bot_name="default").count() == 3
    assert TelegramChat.objects.filter(chat_id=5001, first_name="Ann").exists()


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Content-Type": "application/json"}, b'{"update_id": 1}', 403),
        ({**SECRET, "X-Telegram-Bot-Api-Secret-Token": "wrong"}, b'{"update_id": 1}', 403),
        (SECRET, b"not json", 400),
        (SECRET, b"[1, 2]", 400),
        (SECRET, b'{"message": {"text": "no update id"}}', 400),
        (SECRET, b'{"update_id": "abc"}', 400),
        (SECRET, b'{"update_id": 7, "message": {"text": "no chat"}}', 400),
        (SECRET, b"\xff\xfe", 400),
        (SECRET, b'{"update_id": 1, "pad": "' + b"x" * 1_100_000 + b'"}', 413),
        (SECRET, b'{"update_id": 1, "x": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", 400),
        (SECRET, b'{"update_id": 9223372036854775808}', 400),
        (SECRET, b'{"update_id": 1000000000000000000000000000000}', 400),
        (SECRET, b'{"update_id": -1}', 400),
        (SECRET, b'{"update_id": true}', 400),
        (SECRET, b'{"update_id": NaN}', 400),
        (SECRET, b'{"update_id": 1, "x": 1e400}', 400),
        (SECRET, json.dumps(message_update(10**30, "hi")).encode(), 400),
        (SECRET, json.dumps(message_update(5010, "hi\u0000")).encode(), 400),
    ],
    ids=[
        "no-secret",
        "wrong-secret",
        "not-json",
        "not-object",
        "no-update-id",
        "bad-update-id",
        "bad-message",
        "not-utf8",
        "too-large",
        "nested-50k-deep",
        "update-id-2**63",
        "update-id-10**30",
        "negative-update-id",
        "boolean-update-id",
        "nan",
        "float-overflow",
        "chat-id-10**30",
        "nul-in-text",
    ],
)
def test_bad_requests_are_refused_and_store_nothing(
    inline_server: AsgiServer, headers: dict[str, str], body: bytes, status: int
) -> None:
    assert post(hook(inline_server), body, headers)[0] == status
    assert stored_rows() == 0


def test_unknown_bot_and_other_methods(inline_server: AsgiServer) -> None:
    body = json.dumps(message_update(5002, "/start")).encode()
    assert post(hook(inline_server, "nobody"), body, SECRET)[0] == 404
    assert post(hook(inline_server), b"", {}, method="GET")[0] == 405
    assert post(hook(inline_server), body, SECRET, method="PUT")[0] == 405
    assert stored_rows() == 0


def test_size_is_checked_from_the_header_and_from_the_body() -> None:
    small = b'{"update_id": 1}'
    with pytest.raises(UpdateTooLarge):  # the header alone is enough to refuse
        webhook.check_headers("default", WEBHOOK_SECRET_OF_SETTINGS, str(10**9))
    webhook.check_headers("default", WEBHOOK_SECRET_OF_SETTINGS, "16")
    with pytest.raises(UpdateTooLarge):  # a header that lies is caught by the real length
        webhook.parse_delivery(b" " * 2_000_000)
    with pytest.raises(BadUpdate):
        webhook.check_headers("default", WEBHOOK_SECRET_OF_SETTINGS, "many")
    webhook.check_headers("default", WEBHOOK_SECRET_OF_SETTINGS, None)
    assert webhook.parse_delivery(small).raw == {"update_id": 1}


def test_both_transports_answer_from_one_status_table() -> None:
    assert webhook.error_status(UnknownBot("x")) == (404, "Unknown bot")
    assert webhook.error_status(WebhookForbidden("x")) == (403, "Forbidden")
    assert webhook.error_status(UpdateTooLarge("x")) == (413, "Request body too large")
    assert webhook.error_status(BadUpdate("Body is not JSON")) == (400, "Body is not JSON")
    assert webhook.error_status(StorageUnavailable("down")) == webhook.TRY_AGAIN
    assert webhook.error_status(ZeroDivisionError()) is None  # a bug of ours: a 500


def test_a_duplicate_update_id_is_processed_once(inline_server: AsgiServer) -> None:
    telegram = LocalTelegram(inline_server.url)
    chat = telegram.chat(user_id=5003, first_name="Bo")
    chat.send("hi")  # makes the chat exist in local Telegram
    chat.wait_for_text("Hello, Bo! What would you like to do?")
    before = len(chat.bot_messages())

    update = message_update(5003, "/start")
    update["message"]["chat"]["first_name"] = "Bo"
    body = json.dumps(update).encode()
    assert post(hook(inline_server), body, SECRET)[0] == 200
    assert post(hook(inline_server), body, SECRET)[0] == 200
    assert ProcessedUpdate.objects.filter(update_id=update["update_id"]).count() == 1
    # One more menu for the one processed update, not two.
    assert len(LocalMessage.objects.filter(chat__chat_id=5003, from_bot=True)) == before + 1


def test_a_failing_send_is_answered_200_and_not_retried(inline_server: AsgiServer) -> None:
    # A private message from a chat local Telegram never saw: the bot's sendMessage fails.
    update = message_update(5004, "/start")
    body = json.dumps(update).encode()
    assert post(hook(inline_server), body, SECRET) == (200, {})
    assert post(hook(inline_server), body, SECRET) == (200, {})
    assert ProcessedUpdate.objects.filter(update_id=update["update_id"]).count() == 1


def replying_router() -> Router:
    """A bot whose handlers answer in the webhook response, or fail."""
    router = Router()

    @router.message(F.text == "boom")
    async def boom(message: Message) -> None:
        raise RuntimeError("handler bug")

    @router.message()
    async def echo(message: Message) -> SendMessage:
        return message.answer(f"echo: {message.text}")

    return router


REPLYING = {"BOTS": {"echo": {"ROUTER": "tests.http.test_webhook.replying_router"}}}


@pytest.fixture
async def echo_bot(thread_connections_closed: None) -> AsyncIterator[str]:
    """The replying bot, in this process; its lock connections closed afterwards."""
    with override_settings(BOTDIALOGS=REPLYING):
        yield "echo"
        # PostgreSQL advisory-lock connections would keep the test database busy.
        await bots.get_event_isolation().close()


async def test_a_returned_method_becomes_the_webhook_response(echo_bot: str) -> None:
    reply = await webhook.process_update("echo", message_update(77, "hi"))
    assert reply is not None
    assert reply["method"] == "sendMessage"
    assert (reply["chat_id"], reply["text"]) == (77, "echo: hi")
    json.dumps(reply)  # it must travel as JSON


async def test_a_handler_exception_is_logged_with_bot_and_update_id(
    echo_bot: str, caplog: pytest.LogCaptureFixture
) -> None:
    update = message_update(78, "boom")
    with caplog.at_level(logging.ERROR, logger="botdialogs.webhook"):
        assert await webhook.process_update("echo", update) is None
    assert f"Update {update['update_id']} of bot 'echo' failed" in caplog.text


async def test_an_update_claim_without_a_unit_of_work_is_once_and_expires(
    thread_connections_closed: None,
) -> None:
    # What process_update does for storages without a unit of work (Redis, memory).
    async def confirmed(bot_name: str) -> bool:
        return await webhook.update_claim(bot_name, 42).confirm()

    assert await confirmed("default")
    assert not await confirmed("default")
    assert await confirmed("other")
    old = timezone.now() - timedelta(days=2)
    await ProcessedUpdate.objects.filter(update_id=42).aupdate(received_at=old)
    assert await confirmed("default")  # an expired record no longer counts
    assert not await confirmed("default")


def test_delete_expired_updates() -> None:
    ProcessedUpdate.objects.create(bot_name="default", update_id=1)
    ProcessedUpdate.objects.create(
        bot_name="default", update_id=2, received_at=timezone.now() - timedelta(hours=2)
    )
    with override_settings(BOTDIALOGS={**_demo_settings(), "UPDATE_ID_TTL": 3600}):
        assert delete_expired_updates() == 1
    assert list(ProcessedUpdate.objects.values_list("update_id", flat=True)) == [1]


def _demo_settings() -> dict[str, Any]:
    from django.conf import settings

    return dict(settings.BOTDIALOGS)


def test_queued_mode_runs_the_task_in_process_without_a_broker(
    eager_queued_server: AsgiServer,
) -> None:
    chat = LocalTelegram(eager_queued_server.url).chat(user_id=5005, first_name="Cy")
    chat.send("/start")
    chat.wait_for_text("Hello, Cy! What would you like to do?")
    chat.press("Order food")
    chat.wait_for_text("Are you hungry?")


def test_queued_mode_through_a_celery_worker(
    redis_queued_server: AsgiServer, celery_worker: None
) -> None:
    chat = LocalTelegram(redis_queued_server.url).chat(user_id=5006, first_name="Di")
    assert chat.send("/start")["webhook_status"] == 200  # answered before processing
    chat.wait_for_text("Hello, Di! What would you like to do?", timeout=60)
    chat.press("Order food")
    chat.wait_for_text("Are you hungry?", timeout=30)
    wait_until(lambda: ProcessedUpdate.objects.count() == 2)


# -- hostile input, in this process (Django's async test client) ----------------------------
def quiet_router() -> Router:
    """A bot that handles nothing: deliveries are checked, taken and dropped."""
    return Router(name="quiet")


QUIET_SECRET = "quiet-secret"
QUIET = {"ROUTER": "tests.http.test_webhook.quiet_router", "WEBHOOK_SECRET": QUIET_SECRET}


@pytest.fixture
async def quiet_settings(thread_connections_closed: None) -> AsyncIterator[dict[str, Any]]:
    """BOTDIALOGS with the quiet bot as "default"; this loop's connections closed afterwards."""
    values = {"BOTS": {"default": QUIET}, "WEBHOOK_MAX_BODY_BYTES": 10_000}
    yield values
    await bots.get_event_isolation().close()
    await bots.get_storage().close()


async def deliver(body: bytes, secret: str | None = QUIET_SECRET, bot: str = "default") -> int:
    headers = {webhook.SECRET_HEADER: secret} if secret is not None else {}
    response = await AsyncClient().post(
        f"/bots/{bot}/webhook/", body, content_type="application/json", headers=headers
    )
    return response.status_code


def padded_update(size: int) -> bytes:
    update = message_update(5020, "hi")
    body = json.dumps(update).encode()
    update["pad"] = "x" * (size - len(body) - 10)
    return json.dumps(update).encode()


async def test_a_delivery_is_parsed_once_into_update_and_raw() -> None:
    update = message_update(5021, "hi")
    delivery = webhook.parse_delivery(json.dumps(update).encode())
    assert delivery.raw == update
    assert delivery.update_id == update["update_id"] == delivery.update.update_id
    assert delivery.update.message is not None and delivery.update.message.text == "hi"


@pytest.mark.parametrize("django_limit", [1_000, 10_000_000], ids=["django-lower", "django-higher"])
async def test_the_413_comes_from_our_limit_whatever_djangos_is(
    quiet_settings: dict[str, Any], django_limit: int
) -> None:
    with override_settings(BOTDIALOGS=quiet_settings, DATA_UPLOAD_MAX_MEMORY_SIZE=django_limit):
        assert await deliver(padded_update(20_000)) == 413  # over WEBHOOK_MAX_BODY_BYTES
        assert await sync_to_async(stored_rows)() == 0
        assert await deliver(padded_update(5_000)) == 200  # under ours, whatever Django's
    assert await ProcessedUpdate.objects.acount() == 1


async def test_a_bot_with_a_token_and_no_secret_refuses_deliveries_when_debug_is_off(
    quiet_settings: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    live = {**QUIET, "TOKEN": "123456:real", "WEBHOOK_SECRET": ""}
    body = json.dumps(message_update(5022, "/start")).encode()
    with override_settings(BOTDIALOGS={"BOTS": {"live": live}}, DEBUG=False):
        assert await deliver(body, secret=None, bot="live") == 403
        assert await deliver(body, secret="anything", bot="live") == 403
    assert await sync_to_async(stored_rows)() == 0
    assert "no WEBHOOK_SECRET while DEBUG is off (botdialogs.E014)" in caplog.text
    with override_settings(BOTDIALOGS={"BOTS": {"live": live}}, DEBUG=True):
        webhook.check_secret("live", None)  # open while DEBUG is on, as for local bots
    with override_settings(BOTDIALOGS={"BOTS": {"local": QUIET | {"WEBHOOK_SECRET": ""}}}):
        webhook.check_secret("local", None)  # a local bot stays open (check warning W001)
