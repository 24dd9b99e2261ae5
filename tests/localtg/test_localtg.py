"""Local Telegram: a real aiogram Bot talks HTTP to the emulator on a real ASGI server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup

from botdialogs.engine.bots import bot_token
from botdialogs.localtg.models import LocalFile
from botdialogs.testing import AsgiServer, LocalChatClient, LocalTelegram, LocalTelegramError

pytestmark = pytest.mark.django_db(transaction=True)

KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Press me", callback_data="pressed")]]
)


def local_bot(server: AsgiServer, token: str | None = None) -> Bot:
    api = TelegramAPIServer.from_base(f"{server.url}/localtg", is_local=True)
    return Bot(token or bot_token("default"), session=AiohttpSession(api=api))


@pytest.fixture
async def bot(inline_server: AsgiServer) -> AsyncIterator[Bot]:
    bot = local_bot(inline_server)
    yield bot
    await bot.session.close()


def quiet_chat(server: AsgiServer, user_id: int) -> LocalChatClient:
    """A chat that exists in local Telegram without the bot having been written to."""
    chat = LocalTelegram(server.url).chat(user_id=user_id, first_name="Eve")
    chat.block(False)
    return chat


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == bot.id
    assert me.is_bot


async def test_an_unknown_token_is_unauthorized(inline_server: AsgiServer) -> None:
    stranger = local_bot(inline_server, token="123:local-nobody")
    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_send_edit_and_delete(inline_server: AsgiServer, bot: Bot) -> None:
    chat = quiet_chat(inline_server, 6001)
    sent = await bot.send_message(6001, "one", reply_markup=KEYBOARD)
    assert sent.text == "one"
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "pressed"

    edited = await bot.edit_message_text("two", chat_id=6001, message_id=sent.message_id)
    assert isinstance(edited, type(sent))
    assert edited.text == "two"
    assert edited.reply_markup is None  # no markup given: the keyboard goes
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("two", chat_id=6001, message_id=sent.message_id)

    await bot.edit_message_reply_markup(
        chat_id=6001, message_id=sent.message_id, reply_markup=KEYBOARD
    )
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=6001, message_id=sent.message_id, reply_markup=KEYBOARD
        )
    shown = chat.last()
    assert shown is not None
    assert (shown.text, shown.buttons, shown.edit_count) == ("two", [["Press me"]], 2)

    assert await bot.delete_message(6001, sent.message_id)
    assert chat.last() is None
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(6001, sent.message_id)


async def test_photos_and_documents_keep_their_file_ids(
    inline_server: AsgiServer, bot: Bot, thread_connections_closed: None
) -> None:
    chat = quiet_chat(inline_server, 6002)
    upload = BufferedInputFile(b"\x89PNG fake image", filename="cat.png")
    first = await bot.send_photo(6002, upload, caption="a cat")
    assert first.photo and first.caption == "a cat"
    file_id = first.photo[-1].file_id
    assert await LocalFile.objects.filter(file_id=file_id, size=15).aexists()

    again = await bot.send_photo(6002, file_id)
    assert again.photo and again.photo[-1].file_id == file_id
    edited = await bot.edit_message_caption(
        chat_id=6002, message_id=again.message_id, caption="same cat"
    )
    assert edited.caption == "same cat"

    document = await bot.send_document(6002, BufferedInputFile(b"%PDF", filename="menu.pdf"))
    assert document.document is not None
    assert [m.caption for m in chat.bot_messages()] == ["a cat", "same cat", ""]


async def test_a_user_who_blocked_the_bot_gives_403(inline_server: AsgiServer, bot: Bot) -> None:
    chat = quiet_chat(inline_server, 6003)
    chat.block()
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(6003, "hello?")
    chat.block(False)
    assert (await bot.send_message(6003, "hello!")).text == "hello!"


async def test_a_chat_the_bot_never_met_is_not_found(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(6999, "hi")


async def test_rate_limits_answer_429_when_switched_on(inline_server: AsgiServer, bot: Bot) -> None:
    quiet_chat(inline_server, 6004)
    for _ in range(5):  # off by default: no limit
        await bot.send_message(6004, "fast")
    telegram = LocalTelegram(inline_server.url)
    telegram.set_rate_limits(True)
    with pytest.raises(TelegramRetryAfter) as limited:
        for _ in range(5):
            await bot.send_message(6004, "too fast")
    assert limited.value.retry_after >= 1
    telegram.set_rate_limits(False)
    await bot.send_message(6004, "fine again")


async def test_answer_callback_query_needs_a_real_query(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="query ID is invalid"):
        await bot.answer_callback_query("no-such-query")


async def test_webhook_settings_round_trip(bot: Bot) -> None:
    assert (await bot.get_webhook_info()).url == ""
    url = "https://example.com/bots/default/webhook/"
    await bot.set_webhook(url, secret_token="abc", allowed_updates=["message"])
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates) == (url, ["message"])
    await bot.delete_webhook()
    assert (await bot.get_webhook_info()).url == ""


def test_json_bodies_are_accepted_too(inline_server: AsgiServer) -> None:
    quiet_chat(inline_server, 6005)
    url = f"{inline_server.url}/localtg/bot{bot_token('default')}/sendMessage"
    body = json.dumps({"chat_id": 6005, "text": "json", "reply_markup": {"inline_keyboard": []}})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    assert answer["ok"] is True
    assert answer["result"]["text"] == "json"


def test_a_page_polls_changes_since_a_revision(inline_server: AsgiServer) -> None:
    chat = LocalTelegram(inline_server.url).chat(user_id=6006, first_name="Flo")
    chat.send("/start")
    chat.wait_for_text("Hello, Flo! What would you like to do?")
    seen = chat.read()
    assert [m["from_bot"] for m in seen["messages"]] == [False, True]

    assert chat.read(since=seen["revision"])["messages"] == []
    chat.press("Order food")
    changed = chat.read(since=seen["revision"])
    assert changed["revision"] > seen["revision"]
    assert [m["text"] for m in changed["messages"]] == ["Are you hungry?"]


def test_user_api_errors(inline_server: AsgiServer) -> None:
    chat = LocalTelegram(inline_server.url).chat(user_id=6007)
    with pytest.raises(LocalTelegramError, match="400"):
        chat.press("No such button")
    with pytest.raises(LocalTelegramError, match="404"):
        LocalTelegram(inline_server.url, bot="nobody").chat(1).send("hi")


def test_a_local_bot_stored_under_an_old_id_follows_its_token() -> None:
    from botdialogs.engine.bots import local_bot_id
    from botdialogs.localtg.accounts import local_bot_for_token
    from botdialogs.localtg.models import LocalBot

    LocalBot.objects.create(name="default", token="9123:local-default", bot_id=9123)

    bot = local_bot_for_token(bot_token("default"))

    assert (bot.bot_id, bot.token) == (local_bot_id("default"), bot_token("default"))
    assert LocalBot.objects.get(name="default").bot_id == local_bot_id("default")
