"""The chat playground in Chromium with a Russian user: the demo bot answers in Russian,
switches to German from its Settings window, and counts its plurals."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from botdialogs.testing import AsgiServer
from tests.browser.test_playground import bubble, button, say
from tests.support.i18n_catalogs import compiled_catalogs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("compiled_catalogs")]
expect.set_options(timeout=15_000)


async def open_russian_chat(page: Page, server: AsgiServer, first_name: str) -> None:
    """A new simulated user whose Telegram app is in Russian."""
    await page.goto(f"{server.url}/localtg/")
    await page.fill("#id_first_name", first_name)
    await page.select_option("#id_language_code", "ru")
    await page.click("#new-user button[type=submit]")
    await page.wait_for_url(re.compile(r"/localtg/default/\d+/$"))
    await expect(page.locator("#status")).to_have_text("online")


async def test_a_russian_conversation_in_the_playground(
    page: Page, inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    await open_russian_chat(page, inline_server, "Ольга")
    await say(page, "/start")
    menu = bubble(page, "Привет, Ольга! Что вы хотите сделать?")
    await expect(menu).to_be_visible()
    menu_id = await menu.get_attribute("data-message-id")
    shown = page.locator(f'.lt-msg[data-message-id="{menu_id}"] .lt-text')

    await button(page, "Заказать еду").click()
    await expect(shown).to_have_text("Вы голодны?")
    await button(page, "Да").click()
    await expect(shown).to_contain_text("Ваша корзина пуста.")
    for text in ("1 пицца", "2 пиццы", "3 пиццы", "4 пиццы"):
        await button(page, "+ Пицца").click()
        await expect(shown).to_contain_text(text)
    await button(page, "+ Пицца").click()
    await expect(shown).to_contain_text("5 пицц")

    await say(page, "/settings")
    settings = bubble(page, "Язык: Русский")
    await expect(settings).to_be_visible()
    settings_id = await settings.get_attribute("data-message-id")
    await button(page, "Deutsch").click()
    # The same message, redrawn in German.
    redrawn = page.locator(f'.lt-msg[data-message-id="{settings_id}"] .lt-text')
    await expect(redrawn).to_have_text("Einstellungen\nSprache: Deutsch")
    await button(page, "Schließen").click()
    # Closing the settings shows the cart again, now in German.
    await expect(page.locator(".lt-msg .lt-text").last).to_contain_text("5 x Pizzen")
