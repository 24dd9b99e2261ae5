"""Intent ids never collide: botdialogs' generator, and storage's guard when one does."""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.api.entities import stack as aiogd_stack
from aiogram_dialog.widgets.text import Format
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import override_settings

from botdialogs.engine import bots, intent_ids
from botdialogs.exceptions import IntentIdCollision
from botdialogs.models import DialogContext, DialogStack
from botdialogs.testing import RecordingSession, message_update

pytestmark = pytest.mark.django_db(transaction=True)

CHATS = 1000
STACK_LIMIT = 100  # aiogram_dialog's limit of dialogs in one stack


class Opened(StatesGroup):
    main = State()


async def on_open(message: Message, dialog_manager: DialogManager) -> None:
    # Each dialog remembers which chat opened it: a shared context would show another's.
    await dialog_manager.start(
        Opened.main, data={"chat": message.chat.id, "text": message.text}, mode=StartMode.NORMAL
    )


def build_router() -> Router:
    """A bot whose /open starts one more dialog on the stack."""
    router = Router(name="opener")
    router.message.register(on_open, Command("open"))
    router.include_router(Dialog(Window(Format("open"), state=Opened.main)))
    return router


OPENER = {"BOTS": {"default": {"ROUTER": f"{__name__}.build_router"}}}


@pytest.fixture
def one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiogram_dialog's clock stands still: every id it makes is made "in the same second"."""
    monkeypatch.setattr(aiogd_stack, "time", types.SimpleNamespace(time=lambda: 1_750_000_000.0))


@pytest.fixture
async def opener(one_second: None) -> AsyncIterator[Bot]:
    """The opener bot with a recording session; its database connections closed afterwards."""
    with override_settings(
        BOTDIALOGS={"BOTS": {"default": {"ROUTER": f"{__name__}.build_router"}}}
    ):
        yield Bot(bots.bot_token("default"), session=RecordingSession())
        # PostgreSQL lock and storage connections of this loop would keep the test database busy.
        await bots.get_event_isolation().close()
        await bots.get_storage().close()
    await sync_to_async(connections.close_all)()


async def open_dialogs(bot: Bot, chat_id: int, count: int) -> None:
    dispatcher = bots.get_dispatcher("default")
    for n in range(count):
        await dispatcher.feed_raw_update(bot, message_update(chat_id, f"/open {n}"))


async def stored_dialogs() -> tuple[list[DialogStack], list[DialogContext]]:
    stacks = [stack async for stack in DialogStack.objects.all()]
    contexts = [context async for context in DialogContext.objects.all()]
    return stacks, contexts


def assert_every_context_its_own(
    stacks: list[DialogStack], contexts: list[DialogContext], per_chat: int
) -> None:
    intents = [intent for stack in stacks for intent in stack.intents]
    assert len(intents) == len(set(intents)) == len(stacks) * per_chat
    by_intent = {context.intent_id: context for context in contexts}
    assert len(by_intent) == len(contexts) == len(intents)
    for stack in stacks:
        opened = [by_intent[intent].start_data for intent in stack.intents]
        # Bottom to top, each context is the one its own chat's n-th /open started.
        assert opened == [{"chat": stack.chat_id, "text": f"/open {n}"} for n in range(per_chat)]


def test_aiogram_dialogs_own_generator_repeats_ids_within_a_second(one_second: None) -> None:
    ids = [intent_ids.UPSTREAM_NEW_INT_ID() for _ in range(1000)]
    assert len(set(ids)) <= 100  # 100 values a second: this is what botdialogs fixes


def test_botdialogs_generator_is_installed_and_wide(one_second: None) -> None:
    assert intent_ids.installed()  # by BotDialogsConfig.ready()
    intent_ids.install()  # idempotent
    assert aiogd_stack.new_int_id is intent_ids.new_int_id
    ids = [aiogd_stack.new_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert max(map(len, ids)) <= 11
    assert set("".join(ids)) <= set(aiogd_stack._ID_SYMS)  # aiogram_dialog's alphabet


async def test_a_full_stack_opened_in_one_second_has_distinct_intents(opener: Bot) -> None:
    await open_dialogs(opener, 7001, STACK_LIMIT)

    stacks, contexts = await stored_dialogs()
    assert [stack.depth for stack in stacks] == [STACK_LIMIT]
    assert_every_context_its_own(stacks, contexts, STACK_LIMIT)


@pytest.mark.slow  # a thousand chats
async def test_a_thousand_chats_opening_dialogs_at_once_share_no_intent(opener: Bot) -> None:
    await asyncio.gather(*(open_dialogs(opener, 100_000 + n, 2) for n in range(CHATS)))

    stacks, contexts = await stored_dialogs()
    assert len(stacks) == CHATS
    assert_every_context_its_own(stacks, contexts, 2)


async def test_without_botdialogs_generator_the_guard_refuses_the_stack(
    opener: Bot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(aiogd_stack, "new_int_id", intent_ids.UPSTREAM_NEW_INT_ID)
    errors: list[BaseException] = []
    dispatcher = bots.get_dispatcher("default")
    for n in range(STACK_LIMIT):
        try:
            await dispatcher.feed_raw_update(opener, message_update(7002, f"/open {n}"))
        except IntentIdCollision as error:
            errors.append(error)

    assert errors, "100 ids from 100 values a second: a repeat is all but certain"
    stacks, _ = await stored_dialogs()
    for stack in stacks:  # what was refused was not stored
        assert len(stack.intents) == len(set(stack.intents))


def test_intent_ids_fit_the_columns() -> None:
    width = DialogContext._meta.get_field("intent_id").max_length
    assert width is not None and len(aiogd_stack.id_to_str(2**intent_ids.RANDOM_BITS - 1)) <= width
