"""The playground's Pay button in Chromium: the demo's food order paid in Stars."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import sync_to_async
from playwright.async_api import Page, expect

from botdialogs.models import StarPayment
from botdialogs.testing import AsgiServer
from project.shop.models import Order
from tests.browser.test_playground import bubble, button, open_chat, say

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_invoice_shows_a_pay_button_that_pays_the_order_once(
    page: Page, inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    user_id = await open_chat(page, inline_server, "Penny")
    await say(page, "/start")
    await expect(bubble(page, "What would you like to do?")).to_be_visible()
    for label in ("Order food", "Yes", "+ Tea"):
        await button(page, label).click()
        await expect(page.locator(".lt-pressed")).to_have_count(0)
    await button(page, "Finish").click()
    await expect(bubble(page, "placed. Thank you!")).to_be_visible()
    await button(page, "Pay in Stars").click()

    invoice = bubble(page, "1 x Tea")
    await expect(invoice).to_be_visible()
    await invoice.locator(".lt-pay-button", has_text="Pay ⭐️1").click()
    await expect(bubble(page, "Paid ⭐️1")).to_be_visible()
    # The button is pressed until the webhook answered the payment's update.
    await expect(page.locator(".lt-pressed")).to_have_count(0)

    order = await Order.objects.aget(telegram_user_id=user_id)
    assert order.paid_stars == 1
    payments = await sync_to_async(list)(StarPayment.objects.values_list("invoice_payload"))
    assert payments == [(f"order:{order.pk}",)]

    # Paying the same order again: the bot's pre-checkout answer refuses it, on the page.
    await button(page, "Pay in Stars").click()
    await expect(page.locator(".lt-pay-button")).to_have_count(2)
    await page.locator(".lt-pay-button").last.click()
    await expect(page.locator(".lt-pressed")).to_have_count(0)
    await expect(page.locator("#error")).to_have_text(
        re.compile("Payment failed: This order is paid already.")
    )
    assert await StarPayment.objects.acount() == 1
