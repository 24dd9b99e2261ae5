"""The demo's Mini App clicked through in Chromium: button, panel, order, chat updated.

The chat playground opens the "Open the menu" web_app button in its panel with initData
signed by the local bot's token; the Django page inside orders through Telegram.WebApp's
MainButton, and the chat shows "Order #N placed" from the background action.
"""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import Page, expect

from botdialogs.testing import AsgiServer
from tests.browser.test_playground import bubble, button, open_chat, say

pytestmark = pytest.mark.django_db(transaction=True)
expect.set_options(timeout=15_000)


@sync_to_async
def orders_of(user_id: int) -> list[tuple[int, dict[str, int]]]:
    from project.shop.models import Order

    return [(order.pk, order.items) for order in Order.objects.filter(telegram_user_id=user_id)]


async def test_the_menu_mini_app_orders_and_the_chat_follows(
    page: Page, inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    user_id = await open_chat(page, inline_server, "Nina")
    await say(page, "/start")
    await button(page, "Order food").click()
    await button(page, "Yes").click()
    await expect(bubble(page, "Your cart is empty.")).to_be_visible()

    await page.locator(".lt-inline-button", has_text="Open the menu").last.click()
    panel = page.locator("#webapp-panel")
    await expect(panel).to_be_visible()
    app = page.frame_locator(".lt-webapp-frame")
    await expect(app.locator("h1")).to_have_text("Menu")
    # The shim gave the page the signed initData of this chat's user.
    frame = page.frame(url=re.compile(r"/shop/default/menu/"))
    assert frame is not None
    assert await frame.evaluate("Telegram.WebApp.initDataUnsafe.user.first_name") == "Nina"
    assert await frame.evaluate("Telegram.WebApp.initDataUnsafe.user.id") == user_id

    main_button = panel.locator(".lt-webapp-main")
    await expect(main_button).to_be_hidden()  # nothing picked yet
    pizza = app.locator('.dish[data-dish="pizza"]')
    await pizza.locator(".dish-more").click()
    await pizza.locator(".dish-more").click()
    await app.locator('.dish[data-dish="soup"] .dish-more').click()
    await expect(pizza.locator(".dish-quantity")).to_have_text("2")
    await expect(main_button).to_have_text("Order (3)")
    await main_button.click()

    placed = page.locator(".lt-text", has_text=re.compile(r"^Order #\d+ placed\. Thank you!$"))
    await expect(placed).to_be_visible()
    await expect(panel).to_be_hidden()  # the page closed itself (Telegram.WebApp.close)
    orders = await orders_of(user_id)
    assert [items for _pk, items in orders] == [{"Pizza": 2, "Soup": 1}]
    await expect(placed).to_have_text(f"Order #{orders[0][0]} placed. Thank you!")
