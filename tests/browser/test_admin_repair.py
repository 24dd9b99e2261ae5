"""A support person repairs a user's dialog in a real browser, and the user's chat follows.

The user talks to the demo bot through local Telegram; the staff user signs in to the admin,
opens the user's stack, closes the top dialog through the confirmation page, and reads what
was done. Then the chat, as the user sees it, and the database tell the same story.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from playwright.async_api import Browser, Page, expect

from botdialogs.models import DialogStack
from botdialogs.testing import AsgiServer, LocalTelegram
from tests.browser.conftest import PHONE, create_user, sign_in

MENU = "Hello, Ann! What would you like to do?"


def ann_orders_food(server: AsgiServer) -> None:
    chat = LocalTelegram(server.url).chat(1001, "Ann")
    chat.send("/start")
    chat.wait_for_text(MENU)
    chat.press("Order food")
    chat.wait_for_text("Are you hungry?")


def top_state() -> tuple[int, str]:
    stack = DialogStack.objects.get(chat_id=1001, stack_id="")
    return stack.depth, stack.state


async def test_support_closes_the_top_dialog_and_the_user_sees_the_menu_again(
    eager_queued_server: AsgiServer, page: Page, thread_connections_closed: None
) -> None:
    server = eager_queued_server
    await sync_to_async(ann_orders_food)(server)
    assert await sync_to_async(top_state)() == (2, "FoodOrder:hungry")
    await sync_to_async(create_user)("support", "support-pass-1", staff=True)
    await sign_in(page, server.url, "support", "support-pass-1")

    # Find Ann by her chat id and open her stack: it says who she is.
    await page.goto(f"{server.url}/admin/botdialogs/dialogstack/?q=1001")
    row = page.locator("#result_list tbody tr")
    await expect(row).to_have_count(1)
    await expect(row.locator(".field-who")).to_contain_text("Ann")
    await row.get_by_role("link", name="FoodOrder:hungry").click()
    await expect(page.locator(".field-who")).to_contain_text("Ann")
    await expect(page.locator('input[name="_save"]')).to_have_count(0)

    # The repair asks first, saying what will change; nothing has changed yet.
    await page.get_by_role("button", name="Close the top dialog…").click()
    await expect(page.locator("ul.repair-plan")).to_contain_text(
        "Ann (chat 1001): closes dialog FoodOrder (FoodOrder:hungry); MainMenu:menu is shown again"
    )
    assert await sync_to_async(top_state)() == (2, "FoodOrder:hungry")
    await page.get_by_role("button", name="Yes, close it").click()

    # Back on the list, with exactly what was done.
    await expect(page).to_have_url(f"{server.url}/admin/botdialogs/dialogstack/?q=1001")
    await expect(page.locator("ul.messagelist")).to_have_text(
        "Closed dialog FoodOrder for Ann (chat 1001); now showing MainMenu:menu"
    )

    # Ann's chat shows the main menu again, with its buttons, as the database says.
    def ann_sees_the_menu() -> list[list[str]]:
        chat = LocalTelegram(server.url).chat(1001, "Ann")
        last = chat.last()
        assert last is not None
        # A background event carries no user profile: the menu greets "there", not "Ann".
        return last.buttons if last.text.endswith("What would you like to do?") else []

    buttons = await sync_to_async(ann_sees_the_menu)()
    assert ["Order food"] in buttons
    assert await sync_to_async(top_state)() == (1, "MainMenu:menu")

    # Run again: the confirmation says there is nothing more than the menu to close.
    await page.goto(f"{server.url}/admin/botdialogs/dialogstack/?q=1001")
    await page.locator("#result_list tbody tr input.action-select").check()
    await page.select_option('select[name="action"]', "close_top")
    await page.get_by_role("button", name="Go").click()
    await expect(page.locator("ul.repair-plan")).to_contain_text(
        "closes dialog MainMenu (MainMenu:menu); no dialog is left"
    )


async def test_landing_page_fits_a_phone(eager_queued_server: AsgiServer, browser: Browser) -> None:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await page.goto(f"{eager_queued_server.url}/")

    await expect(page.get_by_role("heading", level=1)).to_have_text("Talk to the demo bot")
    await expect(page.get_by_role("link", name="Admin").first).to_be_visible()
    fits = await page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth")
    assert fits
    # The site's stylesheet is applied (not the browser's default serif, 8px margin).
    margin = await page.eval_on_selector("body", "body => getComputedStyle(body).marginTop")
    assert margin == "0px"
