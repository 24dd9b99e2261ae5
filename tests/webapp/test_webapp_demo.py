"""The demo's Mini App against a real server: local Telegram signs, the page orders twice.

The demo site runs under uvicorn (DEBUG on, its bot local); the user's side is local
Telegram's user API, and the page's requests are sent as the page sends them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiogram.types import InlineQueryResultArticle, InputTextMessageContent
from django.test import override_settings

from botdialogs import webapp
from botdialogs.models import BackgroundAction
from botdialogs.testing import AsgiServer, LocalTelegram
from project.shop.models import Order

pytestmark = pytest.mark.django_db(transaction=True)
USER_ID = 7310


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def open_the_menu(server: AsgiServer) -> tuple[Any, str]:
    chat = LocalTelegram(server.url).chat(USER_ID, "Mia")
    chat.send("/start")
    chat.press("Order food")
    chat.press("Yes")
    button = next(
        b
        for row in chat.wait_for_text("Add something to your cart:\nYour cart is empty.").raw[
            "reply_markup"
        ]["inline_keyboard"]
        for b in row
        if b["text"] == "Open the menu"
    )
    assert button["web_app"]["url"] == "/shop/default/menu/"
    status, answer = post(chat.telegram.api(f"chats/{USER_ID}/webapp/"), {}, {})
    assert status == 200
    return chat, answer["result"]["init_data"]


def test_the_page_posting_twice_places_one_order_and_updates_the_chat_once(
    inline_server: AsgiServer,
) -> None:
    chat, init_data = open_the_menu(inline_server)
    page = urllib.request.urlopen(f"{inline_server.url}/shop/default/menu/", timeout=30)
    assert b"Pizza" in page.read() and page.status == 200
    headers = {"Authorization": f"tma {init_data}", "Idempotency-Key": str(uuid.uuid4())}
    url = f"{inline_server.url}/shop/default/order/"
    first = post(url, {"items": {"pizza": 2, "tea": 1}}, headers)
    again = post(url, {"items": {"pizza": 2, "tea": 1}}, headers)  # a lost answer, retried
    assert first[0] == again[0] == 200
    assert first[1]["order"] == again[1]["order"]
    order = Order.objects.get()
    assert (order.telegram_user_id, order.summary()) == (USER_ID, "2 x Pizza, 1 x Tea")
    placed = f"Order #{order.pk} placed. Thank you!"
    chat.wait_for_text(placed)
    assert [m.text for m in chat.bot_messages()].count(placed) == 1
    action = BackgroundAction.objects.get()
    assert (action.status, action.action, action.chat_id) == ("done", "start", USER_ID)
    # Another order (another key) from the same app session is another order.
    headers["Idempotency-Key"] = str(uuid.uuid4())
    assert post(url, {"items": {"soup": 1}}, headers)[0] == 200
    assert Order.objects.count() == 2


def test_init_data_of_the_page_is_bound_to_its_user(inline_server: AsgiServer) -> None:
    _chat, init_data = open_the_menu(inline_server)
    forged = init_data.replace("Mia", "Max")
    status, answer = post(
        f"{inline_server.url}/shop/default/order/",
        {"items": {"tea": 1}},
        {"Authorization": f"tma {forged}", "Idempotency-Key": str(uuid.uuid4())},
    )
    assert status == 403 and "signed" in answer["error"]
    assert not Order.objects.exists()
    assert not BackgroundAction.objects.exists()


def test_the_signing_endpoint_is_for_known_chats_only(inline_server: AsgiServer) -> None:
    telegram = LocalTelegram(inline_server.url)
    status, answer = post(telegram.api("chats/999999/webapp/"), {}, {})
    assert status == 404 and answer["ok"] is False


def test_answer_web_app_query_posts_the_result_in_the_chat(
    inline_server: AsgiServer, settings: Any
) -> None:
    chat, init_data = open_the_menu(inline_server)
    query_id = parse_qs(init_data)["query_id"][0]
    result = InlineQueryResultArticle(
        id="1",
        title="Order",
        input_message_content=InputTextMessageContent(message_text="Mia shared the menu"),
    )
    local = {**settings.BOTDIALOGS, "LOCAL_TELEGRAM_URL": inline_server.url}
    with override_settings(BOTDIALOGS=local, DEBUG=True):
        sent = webapp.answer_web_app_query("default", query_id, result)
        assert sent.inline_message_id
        with pytest.raises(webapp.MalformedInitData):  # an app not opened inline has none
            webapp.answer_web_app_query("default", "", result)
    chat.wait_for_text("Mia shared the menu")
