"""The admin in a real browser: its stylesheet is served under uvicorn and applied."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from playwright.async_api import Page, expect

from botdialogs.testing import AsgiServer
from tests.browser.conftest import create_user, sign_in


async def test_admin_stylesheet_is_applied(
    inline_server: AsgiServer, page: Page, thread_connections_closed: None
) -> None:
    await sync_to_async(create_user)("support", "support-pass-1", staff=True)
    await sign_in(page, inline_server.url, "support", "support-pass-1")

    # Computed styles, not status codes: a page whose CSS 404s renders the browser defaults
    # (a transparent header, a serif body font).
    header_background = await page.eval_on_selector(
        "#header", "element => getComputedStyle(element).backgroundColor"
    )
    body_font = await page.eval_on_selector(
        "body", "element => getComputedStyle(element).fontFamily"
    )
    assert header_background not in ("", "rgba(0, 0, 0, 0)", "transparent")
    assert "serif" not in body_font.replace("sans-serif", "")
    assert await page.locator("#site-name").count() == 1


async def test_admin_is_branded_with_the_demo_name(
    inline_server: AsgiServer, page: Page, thread_connections_closed: None
) -> None:
    await sync_to_async(create_user)("support", "support-pass-1", staff=True)
    await sign_in(page, inline_server.url, "support", "support-pass-1")

    await expect(page.locator("#site-name")).to_have_text("botdialogs demo")
    await expect(page).to_have_title("Site administration | botdialogs demo")
    # The demo's own admin stylesheet is served and applied too.
    await page.goto(f"{inline_server.url}/admin/botdialogs/dialogstack/")
    rules = await page.evaluate(
        "[...document.styleSheets].filter(s => (s.href || '').endsWith('/static/site/admin.css'))"
        ".map(s => s.cssRules.length)"
    )
    assert len(rules) == 1 and rules[0] > 0  # loaded (a 404 would parse to no rules)
