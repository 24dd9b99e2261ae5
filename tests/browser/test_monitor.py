"""The live monitor in a real browser: staff watch simulated users talk to the demo bot."""

from __future__ import annotations

import asyncio
import re

from asgiref.sync import sync_to_async
from playwright.async_api import Browser, Page, expect

from botdialogs.testing import AsgiServer, LocalTelegram
from tests.browser.conftest import PHONE, create_user, sign_in


async def open_monitor(page: Page, base_url: str, query: str = "") -> None:
    """The monitor page, once its websocket is live."""
    await page.goto(f"{base_url}/botdialogs/monitor/{query}")
    await expect(page.locator("#monitor-status")).to_have_text("live")


async def test_staff_see_a_conversation_as_it_happens_and_follow_it_to_the_stack(
    inline_server: AsgiServer, page: Page, thread_connections_closed: None
) -> None:
    await sync_to_async(create_user)("support", "support-pass-1", staff=True)
    await sign_in(page, inline_server.url, "support", "support-pass-1")
    await open_monitor(page, inline_server.url)
    events = page.locator("#monitor-events")
    chat = LocalTelegram(inline_server.url).chat(7101, first_name="Eve")

    await asyncio.to_thread(chat.send, "/start")
    await expect(events).to_contain_text("update received")
    await expect(events).to_contain_text("message “/start”")
    await expect(events).to_contain_text("dialog started")
    await expect(events).to_contain_text("MainMenu:menu")
    await asyncio.to_thread(chat.press, "Order food")
    await expect(events).to_contain_text("FoodOrder:hungry")
    await asyncio.to_thread(chat.press, "Yes")
    await expect(events.locator("li.kind-dialog-switched").first).to_contain_text(
        "FoodOrder:hungry → FoodOrder:cart"
    )
    # Newest on top: the switch came after the start of the menu.
    await expect(events.locator("li").last).to_contain_text("update received")

    # What a user writes stays text, markup included.
    await asyncio.to_thread(chat.send, "<img src=x onerror=alert(1)><b>bold</b>")
    await expect(events).to_contain_text("<b>bold</b>")
    assert await events.locator("img, b").count() == 0

    link = events.locator("li.kind-dialog-switched a.stack-link").first
    await expect(link).to_contain_text("user 7101")
    await link.click()
    await expect(page).to_have_url(re.compile(r"/admin/botdialogs/dialogstack/\?"))
    await expect(page.locator("#result_list")).to_contain_text("7101")
    await expect(page.locator("#result_list")).to_contain_text("FoodOrder:cart")


async def test_a_non_staff_user_gets_the_login_page(
    inline_server: AsgiServer, page: Page, thread_connections_closed: None
) -> None:
    await sync_to_async(create_user)("clerk", "clerk-pass-1", staff=False)
    await sign_in(page, inline_server.url, "clerk", "clerk-pass-1")
    await page.goto(f"{inline_server.url}/botdialogs/monitor/")
    await expect(page).to_have_url(re.compile(r"/admin/login/\?next=/botdialogs/monitor/"))
    await expect(page.locator("#monitor")).to_have_count(0)


async def test_a_user_filter_hides_other_users_and_pause_holds_events_on_a_phone(
    inline_server: AsgiServer, browser: Browser, thread_connections_closed: None
) -> None:
    await sync_to_async(create_user)("support", "support-pass-1", staff=True)
    context = await browser.new_context(viewport=PHONE)
    context.set_default_timeout(15_000)
    everyone, one_user = await context.new_page(), await context.new_page()
    await sign_in(everyone, inline_server.url, "support", "support-pass-1")
    await open_monitor(everyone, inline_server.url)
    await open_monitor(one_user, inline_server.url, "?user=7202")
    await expect(one_user.locator("#monitor-user")).to_have_value("7202")
    telegram = LocalTelegram(inline_server.url)

    await asyncio.to_thread(telegram.chat(7201, first_name="Al").send, "/start")
    await expect(everyone.locator("#monitor-events")).to_contain_text("user 7201")
    await asyncio.to_thread(telegram.chat(7202, first_name="Bo").send, "/start")
    await expect(one_user.locator("#monitor-events")).to_contain_text("user 7202")
    await expect(everyone.locator("#monitor-events")).to_contain_text("user 7202")
    # Events reach every socket in order: 7201's came first, and the filter dropped them.
    await expect(one_user.locator("#monitor-events")).not_to_contain_text("user 7201")

    # Paused: new events wait, counted; resumed: they are shown.
    await one_user.click("#monitor-pause")
    shown = await one_user.locator("#monitor-events li").count()
    await asyncio.to_thread(telegram.chat(7202, first_name="Bo").press, "Order food")
    await expect(one_user.locator("#monitor-status")).to_contain_text("new")
    assert await one_user.locator("#monitor-events li").count() == shown
    await one_user.click("#monitor-pause")
    await expect(one_user.locator("#monitor-events")).to_contain_text("FoodOrder:hungry")

    # A phone-sized screen: nothing wider than the screen.
    overflow = await one_user.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
