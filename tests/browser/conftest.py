"""Headless Chromium for the page tests: Debian's ``/usr/bin/chromium`` driven by Playwright.

Playwright never downloads a browser here (``.ci/run`` installs Debian's chromium); a
missing one fails the tests with a message, it does not skip them. Every page a test opened
is saved as a PNG under ``test-output/screenshots/`` (``TEST_OUTPUT_DIR`` moves it) when
the test ends, passed or failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
OUTPUT_DIR = Path(os.environ.get("TEST_OUTPUT_DIR") or Path(__file__).parents[2] / "test-output")
# As root, without a sandbox; no background traffic (this machine's network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: A phone-sized screen, for the tests that check the pages work there.
PHONE = {"width": 390, "height": 780}


@pytest.fixture
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """A headless Chromium for one test; its pages are screenshotted when the test ends."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"No Chromium at {CHROMIUM}: apt-get install chromium chromium-driver")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await _screenshot_all(launched, request.node.nodeid)
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> BrowserContext:
    """A browser context (its own cookies: one signed-in person) of desktop size."""
    new = await browser.new_context(viewport={"width": 1280, "height": 900})
    new.set_default_timeout(15_000)
    return new


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    """A tab in :func:`context`."""
    return await context.new_page()


async def _screenshot_all(browser: Browser, nodeid: str) -> None:
    folder = OUTPUT_DIR / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::", 1)[-1])
    pages = [page for context in browser.contexts for page in context.pages]
    for number, open_page in enumerate(pages):
        suffix = f"-{number}" if len(pages) > 1 else ""
        try:
            await open_page.screenshot(path=folder / f"{stem}{suffix}.png", full_page=True)
        except PlaywrightError:  # a page that crashed or closed: nothing to keep
            continue


def create_user(username: str, password: str, *, staff: bool) -> None:
    """A user who can (``staff``) or cannot sign in to the admin (call via sync_to_async)."""
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(
        username, password=password, is_staff=staff, is_superuser=staff
    )


async def sign_in(page: Page, base_url: str, username: str, password: str) -> None:
    """Sign in through the admin's login form."""
    await page.goto(f"{base_url}/admin/login/")
    await page.fill("#id_username", username)
    await page.fill("#id_password", password)
    await page.click("input[type=submit]")
    await page.wait_for_load_state()
