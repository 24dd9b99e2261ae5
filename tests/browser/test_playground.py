"""The chat playground in Chromium: a Telegram-like page over local Telegram.

Every test drives the real page against a real uvicorn (the demo site), clicking what a
person would click; the bot answers through its real webhook path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)
from asgiref.sync import sync_to_async
from playwright.async_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from botdialogs.engine.bots import bot_token
from botdialogs.testing import AsgiServer, CeleryWorker
from tests.browser.conftest import PHONE
from tests.support.servers import BROKER_VARIABLES, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)
# A queued bot's first answer waits for a fresh Celery worker to load the bot.
expect.set_options(timeout=15_000)

# A 1x1 PNG (red), uploaded as the bot's photo.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
HOSTILE_NAME = "<img src=x onerror=alert(1)>"


async def open_chat(page: Page, server: AsgiServer, first_name: str, **profile: str) -> int:
    """Make a simulated user on the playground's start page; returns their chat id."""
    await page.goto(f"{server.url}/localtg/")
    await page.fill("#id_first_name", first_name)
    for field, value in profile.items():
        await page.fill(f"#id_{field}", value)
    await page.click("#new-user button[type=submit]")
    await page.wait_for_url(re.compile(r"/localtg/default/\d+/$"))
    await expect(page.locator("#status")).to_have_text("online")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


async def say(page: Page, text: str) -> None:
    """Type ``text`` into the composer and press Enter."""
    await page.fill("#text", text)
    await page.press("#text", "Enter")


def bubble(page: Page, text: str) -> Any:
    """The message on the page that shows ``text``."""
    return page.locator(".lt-msg", has=page.locator(".lt-text", has_text=text))


def button(page: Page, label: str) -> Any:
    """The newest inline button labelled ``label``."""
    return page.locator(".lt-inline-button", has_text=re.compile(f"^{re.escape(label)}$")).last


def download(url: str) -> tuple[Any, bytes]:
    """The headers and body of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.headers, response.read()


@pytest.fixture
async def bot(inline_server: AsgiServer) -> AsyncIterator[Bot]:
    """The demo bot's Bot API client, talking to local Telegram over HTTP."""
    api = TelegramAPIServer.from_base(f"{inline_server.url}/localtg", is_local=True)
    client = Bot(bot_token("default"), session=AiohttpSession(api=api))
    yield client
    await client.session.close()


@sync_to_async
def orders_of(user_id: int) -> list[dict[str, int]]:
    from project.shop.models import Order

    return [order.items for order in Order.objects.filter(telegram_user_id=user_id)]


async def test_the_food_order_clicked_through(
    page: Page, inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    user_id = await open_chat(page, inline_server, "Fiona", last_name="Fox", username="fiona")
    await page.evaluate("window.notReloaded = true")

    await say(page, "/start")
    menu = bubble(page, "Hello, Fiona! What would you like to do?")
    await expect(menu).to_be_visible()
    await expect(bubble(page, "/start")).to_have_class(re.compile("lt-from-user"))
    menu_id = await menu.get_attribute("data-message-id")

    await button(page, "Order food").click()
    # The bot edits the menu message in place: the same element now asks.
    edited = page.locator(f'.lt-msg[data-message-id="{menu_id}"] .lt-text')
    await expect(edited).to_have_text("Are you hungry?")
    await expect(page.locator(f'.lt-msg[data-message-id="{menu_id}"] .lt-edited')).to_be_visible()

    await button(page, "Yes").click()
    await expect(edited).to_contain_text("Your cart is empty.")
    for item in ("+ Pizza", "+ Pizza", "+ Tea"):
        before = await edited.text_content()
        await button(page, item).click()
        await expect(edited).not_to_have_text(before or "")
    await expect(edited).to_contain_text("2 x Pizza")
    await expect(edited).to_contain_text("1 x Tea")
    await button(page, "Finish").click()
    await expect(edited).to_have_text(re.compile(r"^Order #\d+ placed\. Thank you!$"))

    assert await orders_of(user_id) == [{"Pizza": 2, "Tea": 1}]
    assert await page.evaluate("window.notReloaded") is True


async def test_two_tabs_stay_in_step_and_see_sends_from_outside(
    context: BrowserContext, inline_server: AsgiServer, bot: Bot
) -> None:
    first = await context.new_page()
    user_id = await open_chat(first, inline_server, "Tess")
    second = await context.new_page()
    await second.goto(first.url)
    await expect(second.locator("#status")).to_have_text("online")

    await say(first, "/start")
    for tab in (first, second):
        await expect(bubble(tab, "Hello, Tess!")).to_be_visible()
    await button(second, "Order food").click()
    for tab in (first, second):
        await expect(bubble(tab, "Are you hungry?")).to_be_visible()
        await expect(bubble(tab, "Hello, Tess!")).to_have_count(0)

    # The bot sends from outside any update: both tabs show it, in place, without a reload.
    sent = await bot.send_message(user_id, "A message from outside")
    await bot.send_photo(user_id, BufferedInputFile(PNG, "red.png"), caption="A red dot")
    await bot.send_document(
        user_id, BufferedInputFile(b"<script>alert(3)</script>", "page.html"), caption="A file"
    )
    for tab in (first, second):
        await expect(bubble(tab, "A message from outside")).to_be_visible()
        photo = tab.locator(".lt-msg", has_text="A red dot").locator("img.lt-photo")
        await expect(photo).to_be_visible()
        assert await photo.evaluate("img => img.complete && img.naturalWidth") == 1
        link = tab.locator(".lt-msg", has_text="A file").locator("a.lt-file")
        await expect(link).to_have_text("📄 page.html")
    href = await link.get_attribute("href")
    headers, body = await asyncio.to_thread(download, f"{inline_server.url}{href}")
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Disposition"] == 'attachment; filename="page.html"'
    assert body == b"<script>alert(3)</script>"

    await bot.edit_message_text("Edited from outside", chat_id=user_id, message_id=sent.message_id)
    await bot.delete_message(user_id, sent.message_id)
    for tab in (first, second):
        gone = tab.locator(f'.lt-msg[data-message-id="{sent.message_id}"]')
        await expect(gone).to_have_text("Message deleted")
        await expect(gone).to_have_class(re.compile("lt-deleted"))


@sync_to_async
def unanswered_query(user_id: int, data: str) -> str | None:
    from botdialogs.localtg.models import LocalCallbackQuery

    query = LocalCallbackQuery.objects.filter(
        chat__chat_id=user_id, data=data, answered=False
    ).first()
    return query.query_id if query else None


async def wait_for_query(page: Page, user_id: int, data: str) -> str:
    """The id of the press the page just made (the bot does not answer it itself here)."""
    for _ in range(200):
        query_id = await unanswered_query(user_id, data)
        if query_id:
            return query_id
        await page.wait_for_timeout(50)  # polling the database for the press
    raise AssertionError(f"No press of {data!r} reached local Telegram")


async def test_callback_answers_and_reply_keyboards(
    page: Page, inline_server: AsgiServer, bot: Bot, thread_connections_closed: None
) -> None:
    user_id = await open_chat(page, inline_server, "Cleo")
    # Presses are not delivered to the demo bot: this test answers them itself.
    await bot.set_webhook(
        f"{inline_server.url}/bots/default/webhook/",
        secret_token=WEBHOOK_SECRET,
        allowed_updates=["message"],
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text="Toast", callback_data="toast"),
                InlineKeyboardButton(text="Alert", callback_data="alert"),
            ],
            [InlineKeyboardButton(text="Docs", url="https://example.com/docs")],
        ]
    )
    await bot.send_message(user_id, "Press something", reply_markup=keyboard)
    await expect(button(page, "Docs ↗")).to_have_attribute("href", "https://example.com/docs")

    await button(page, "Toast").click()
    await bot.answer_callback_query(await wait_for_query(page, user_id, "toast"), text="Saved!")
    await expect(page.locator("#toast")).to_have_text("Saved!")
    await expect(page.locator("#alert")).to_be_hidden()

    await button(page, "Alert").click()
    await bot.answer_callback_query(
        await wait_for_query(page, user_id, "alert"), text="Are you sure?", show_alert=True
    )
    await expect(page.locator("#alert")).to_be_visible()
    await expect(page.locator("#alert-text")).to_have_text("Are you sure?")
    await page.click("#alert-ok")
    await expect(page.locator("#alert")).to_be_hidden()

    # A one-time reply keyboard: a key sends its text as a message, then the keyboard goes.
    colours = ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text="Red"), KeyboardButton(text="Blue")]],
        one_time_keyboard=True,
    )
    await bot.send_message(user_id, "Pick a colour", reply_markup=colours)
    await page.locator(".lt-reply-button", has_text="Red").click()
    await expect(bubble(page, "Red")).to_have_class(re.compile("lt-from-user"))
    await expect(page.locator("#reply-keyboard")).to_be_hidden()
    # A persistent one stays until the bot removes it.
    sizes = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="Small")]])
    await bot.send_message(user_id, "Pick a size", reply_markup=sizes)
    await page.locator(".lt-reply-button", has_text="Small").click()
    await expect(bubble(page, "Small")).to_be_visible()
    await expect(page.locator(".lt-reply-button", has_text="Small")).to_be_visible()
    await bot.send_message(user_id, "Thanks", reply_markup=ReplyKeyboardRemove())
    await expect(page.locator("#reply-keyboard")).to_be_hidden()


async def test_a_phone_sized_page_escapes_html_and_refuses_long_texts(
    browser: Browser, inline_server: AsgiServer
) -> None:
    phone = await browser.new_context(viewport=PHONE)
    phone.set_default_timeout(15_000)
    page = await phone.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    await open_chat(page, inline_server, HOSTILE_NAME)
    await expect(page.locator("#user-name")).to_have_text(HOSTILE_NAME)
    await say(page, "<script>alert(2)</script>")
    await expect(bubble(page, "<script>alert(2)</script>")).to_be_visible()
    await expect(bubble(page, f"Hello, {HOSTILE_NAME}! What would you like to do?")).to_be_visible()
    assert await page.locator("img[src=x], .lt-messages script").count() == 0

    # Usable on the phone: nothing wider than the screen, the composer and buttons on it.
    assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    composer = await page.locator("#composer").bounding_box()
    assert composer is not None and composer["y"] + composer["height"] <= PHONE["height"]
    await button(page, "Order food").click()
    await expect(bubble(page, "Are you hungry?")).to_be_visible()

    # Telegram takes 4096 characters: more is refused in the page, and nothing is lost.
    too_long = "x" * 4097
    count = await page.locator(".lt-msg").count()
    await say(page, too_long)
    await expect(page.locator("#error")).to_contain_text("at most 4096")
    assert await page.input_value("#text") == too_long
    assert await page.locator(".lt-msg").count() == count
    await say(page, "x" * 4096)
    await expect(page.locator("#error")).to_be_hidden()
    await expect(page.locator("#text")).to_have_value("")

    assert dialogs == []
    start = await phone.new_page()
    start.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await start.goto(f"{inline_server.url}/localtg/")
    await expect(start.locator(".lt-chats")).to_contain_text(HOSTILE_NAME)
    assert dialogs == []


async def test_an_unknown_chat_is_a_404_page(page: Page, inline_server: AsgiServer) -> None:
    response = await page.goto(f"{inline_server.url}/localtg/default/424242/")
    assert response is not None and response.status == 404
    response = await page.goto(f"{inline_server.url}/localtg/nobody/1/")
    assert response is not None and response.status == 404


SEND_FROM_ANOTHER_PROCESS = """
import django
django.setup()
from botdialogs.engine.bots import bot_token
from botdialogs.localtg import botapi
answer = botapi.call(bot_token("default"), "sendMessage", {"chat_id": %d, "text": %r})
assert answer["ok"], answer
"""


async def test_sends_from_other_processes_reach_the_page_over_redis(
    page: Page,
    celery_worker: CeleryWorker,
    redis_queued_server: AsgiServer,
    redis_env: dict[str, str],
) -> None:
    user_id = await open_chat(page, redis_queued_server, "Rhea")
    # Queued mode: a Celery worker runs the bot, its sends reach the web server's API.
    await say(page, "/start")
    await expect(bubble(page, "Hello, Rhea!")).to_be_visible()

    # Another process changes the chat itself (it bumps the revision and announces it over
    # channels-redis); the page hears it on its websocket, with no request of its own.
    polls: list[str] = []
    page.on(
        "request", lambda request: polls.append(request.url) if "since=" in request.url else None
    )
    script = SEND_FROM_ANOTHER_PROCESS % (user_id, "Sent by another process")
    env = {**redis_env, "DJANGO_SETTINGS_MODULE": "project.settings"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
    )  # no bound of its own: Django's start took over 60 s under load (pytest's timeout holds)
    assert done.returncode == 0, done.stderr
    await expect(bubble(page, "Sent by another process")).to_be_visible()
    assert polls == []


async def test_a_page_catches_up_on_focus_what_its_socket_could_not_hear(
    page: Page, inline_server: AsgiServer, test_db_env: dict[str, str]
) -> None:
    frames: list[str] = []
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda payload: frames.append(payload)),
    )
    user_id = await open_chat(page, inline_server, "Ida")
    # Another process on the in-memory channel layer: its announcement reaches nobody.
    env = {key: value for key, value in test_db_env.items() if key not in BROKER_VARIABLES}
    script = SEND_FROM_ANOTHER_PROCESS % (user_id, "Sent while nobody listened")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        env={**env, "DJANGO_SETTINGS_MODULE": "project.settings"},
        capture_output=True,
        text=True,
    )  # no bound of its own: Django's start took over 60 s under load (pytest's timeout holds)
    assert done.returncode == 0, done.stderr

    await page.evaluate("window.dispatchEvent(new Event('focus'))")
    await expect(bubble(page, "Sent while nobody listened")).to_be_visible()
    carried = [json.loads(f) for f in frames if isinstance(f, str) and "nobody listened" in f]
    # It came because the page asked (a sync on focus), never as a push.
    assert carried and {frame["cause"] for frame in carried} == {"sync"}


async def test_bot_formatting_is_drawn_and_bot_markup_never_runs(
    page: Page, inline_server: AsgiServer, bot: Bot
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    user_id = await open_chat(page, inline_server, "Max")
    await bot.send_message(
        user_id,
        '<b>Bold</b> and <a href="https://example.com/">a link</a> '
        "&lt;img src=x onerror=alert(5)&gt;",
        parse_mode="HTML",
    )
    await bot.send_message(user_id, "<script>alert(6)</script><i>as written</i>")

    formatted = bubble(page, "Bold and a link")
    await expect(formatted.locator("b")).to_have_text("Bold")
    await expect(formatted.locator("a")).to_have_attribute("href", "https://example.com/")
    await expect(formatted.locator(".lt-text")).to_have_text(
        "Bold and a link <img src=x onerror=alert(5)>"
    )
    await expect(bubble(page, "<script>alert(6)</script><i>as written</i>")).to_be_visible()
    assert await page.locator(".lt-messages img, .lt-messages script, .lt-messages i").count() == 0
    assert dialogs == []


async def test_a_page_reconnects_and_catches_up(
    page: Page, inline_server: AsgiServer, bot: Bot
) -> None:
    sockets: list[WebSocketRoute] = []
    reconnect = asyncio.Event()

    async def route(socket: WebSocketRoute) -> None:
        sockets.append(socket)
        if len(sockets) > 1:
            await reconnect.wait()  # the server stays out of reach until the test says so
        socket.connect_to_server()

    await page.route_web_socket(re.compile(r"/ws/localtg/"), route)
    user_id = await open_chat(page, inline_server, "Rob")
    await sockets[0].close(code=1011)
    await expect(page.locator("#status")).not_to_have_text("online")

    await bot.send_message(user_id, "Sent while the page was offline")
    missed = bubble(page, "Sent while the page was offline")
    assert await missed.count() == 0
    reconnect.set()
    await expect(missed).to_be_visible()
    await expect(page.locator("#status")).to_have_text("online")
    assert len(sockets) >= 2


async def test_the_user_blocks_and_unblocks_the_bot_in_both_tabs(
    context: BrowserContext, inline_server: AsgiServer, bot: Bot
) -> None:
    first = await context.new_page()
    user_id = await open_chat(first, inline_server, "Bea")
    second = await context.new_page()
    await second.goto(first.url)
    await expect(second.locator("#status")).to_have_text("online")

    await first.click("#block")
    for tab in (first, second):
        await expect(tab.locator("#blocked")).to_be_visible()
        await expect(tab.locator("#block")).to_have_text("Unblock")
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(user_id, "Anyone there?")

    await second.click("#block")
    for tab in (first, second):
        await expect(tab.locator("#blocked")).to_be_hidden()
    await bot.send_message(user_id, "Welcome back")
    await expect(bubble(first, "Welcome back")).to_be_visible()
