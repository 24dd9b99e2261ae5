"""botdialogs.background.current / acurrent: what a chat shows now, as site code asks it.

Run on SQLite, and on PostgreSQL when DATABASE_URL is set (the second CI pass); the same
questions also go to aiogram's MemoryStorage, since the query reads through the storage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Bot, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.text import Const
from asgiref.sync import async_to_sync
from django.test import override_settings

from botdialogs import background
from botdialogs.engine import bots
from botdialogs.exceptions import NotInAsyncContext, UnknownBot
from botdialogs.testing import RecordingSession, message_update

CHAT = 5151
GROUP = -1005151
ALICE, BOB = 5252, 5353


class Menu(StatesGroup):
    main = State()
    more = State()


class Orders(StatesGroup):
    list = State()


async def on_start(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(Menu.main, mode=StartMode.RESET_STACK)


async def on_orders(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(Orders.list, data={"order": 7})


async def on_more(message: Message, dialog_manager: DialogManager) -> None:
    dialog_manager.dialog_data["page"] = 2
    await dialog_manager.switch_to(Menu.more)


async def on_close(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.reset_stack()


async def orders_started(start_data: Any, dialog_manager: DialogManager) -> None:
    dialog_manager.dialog_data["seen"] = True


def build_router() -> Router:
    """A bot of this test: a two-window menu and an orders dialog started on top of it."""
    router = Router(name="current")
    router.message.register(on_start, CommandStart())
    router.message.register(on_orders, Command("orders"))
    router.message.register(on_more, Command("more"))
    router.message.register(on_close, Command("close"))
    router.include_router(
        Dialog(
            Window(Const("menu"), state=Menu.main),
            Window(Const("more"), state=Menu.more),
        )
    )
    router.include_router(
        Dialog(Window(Const("orders"), state=Orders.list), on_start=orders_started)
    )
    return router


DJANGO = {"BACKEND": "botdialogs.storage.DjangoStorage", "CONFIG": {}}
MEMORY = {"BACKEND": "aiogram.fsm.storage.memory.MemoryStorage", "CONFIG": {}}


@pytest.fixture(params=[DJANGO, MEMORY], ids=["django", "memory"])
def storage(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    settings = {
        "BOTS": {"default": {"ROUTER": "tests.background.test_background_current.build_router"}},
        "BACKGROUND": "inline",
        "STORAGE": request.param,
    }
    with override_settings(BOTDIALOGS=settings):
        yield request.param


def feed(text: str, chat_id: int = CHAT, user_id: int | None = None) -> None:
    """One message through the bot's Dispatcher, answered by a recording Bot session."""
    update = message_update(chat_id, text, user_id)
    if chat_id < 0:
        update["message"]["chat"] = {"id": chat_id, "type": "supergroup", "title": "Kitchen"}

    async def run() -> None:
        bot = Bot(bots.bot_token("default"), session=RecordingSession())
        await bots.get_dispatcher("default").feed_raw_update(bot, update)
        await bots.get_storage().close()

    async_to_sync(run)()


def ask_async(user_id: int, chat_id: int, **key: Any) -> background.CurrentDialog | None:
    async def run() -> background.CurrentDialog | None:
        async with bots.bot_scope():
            return await background.acurrent("default", user_id, chat_id, **key)

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_a_chat_without_a_dialog_shows_none(storage: dict[str, Any]) -> None:
    assert background.current("default", CHAT, CHAT) is None
    assert ask_async(CHAT, CHAT) is None


@pytest.mark.django_db(transaction=True)
def test_the_top_dialog_with_its_state_and_data(storage: dict[str, Any]) -> None:
    feed("/start")
    shown = background.current("default", CHAT, CHAT)
    assert shown is not None
    assert (shown.state, shown.group, shown.depth, shown.stack_id) == ("Menu:main", "Menu", 1, "")
    assert shown.dialog_data == {} and shown.start_data is None
    assert shown.shows(Menu) and shown.shows(Menu.main) and shown.shows("Menu:main")
    assert not shown.shows(Menu.more) and not shown.shows(Orders)

    feed("/more")
    shown = background.current("default", CHAT, CHAT)
    assert shown is not None and shown.state == "Menu:more" and shown.dialog_data == {"page": 2}

    feed("/orders")
    shown = background.current("default", CHAT, CHAT)
    assert shown is not None and shown.shows(Orders.list) and shown.depth == 2
    assert shown.start_data == {"order": 7} and shown.dialog_data == {"seen": True}
    assert ask_async(CHAT, CHAT) == shown


@pytest.mark.django_db(transaction=True)
def test_a_closed_stack_shows_none(storage: dict[str, Any]) -> None:
    feed("/start")
    feed("/orders")
    feed("/close")
    assert background.current("default", CHAT, CHAT) is None


@pytest.mark.django_db(transaction=True)
def test_in_a_group_each_user_has_their_own_dialog(storage: dict[str, Any]) -> None:
    feed("/start", GROUP, ALICE)
    feed("/orders", GROUP, BOB)  # no dialog of Bob's below: orders alone
    alice = background.current("default", ALICE, GROUP)
    bob = background.current("default", BOB, GROUP)
    assert alice is not None and alice.shows(Menu.main) and alice.stack_id == f"<{ALICE}>"
    assert bob is not None and bob.shows(Orders) and bob.depth == 1
    assert background.current("default", ALICE, ALICE) is None  # Alice's private chat
    assert background.current("default", ALICE, GROUP, stack_id="other") is None


@pytest.mark.django_db(transaction=True)
def test_a_stack_whose_top_dialog_is_gone_shows_none(storage: dict[str, Any]) -> None:
    feed("/start")
    shown = background.current("default", CHAT, CHAT)
    assert shown is not None

    async def drop_top_context() -> None:
        from aiogram.fsm.storage.base import StorageKey

        key = StorageKey(bot_id=bots.bot_id("default"), chat_id=CHAT, user_id=CHAT)
        await bots.get_storage().set_data(
            StorageKey(**{**key.__dict__, "destiny": f"aiogd:context:{shown.intent_id}"}), {}
        )
        await bots.get_storage().close()

    async_to_sync(drop_top_context)()
    assert background.current("default", CHAT, CHAT) is None


def test_an_unknown_bot_is_refused(storage: dict[str, Any]) -> None:
    with pytest.raises(UnknownBot, match="nobody"):
        background.current("nobody", CHAT, CHAT)


def test_the_sync_call_refuses_a_running_loop(storage: dict[str, Any]) -> None:
    async def misuse() -> None:
        background.current("default", CHAT, CHAT)

    with pytest.raises(NotInAsyncContext, match="await"):
        asyncio.run(misuse())
