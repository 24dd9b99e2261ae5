"""DjangoStorage dropped into a plain aiogram Dispatcher with no isolation argument: the
update's reads of its chat come from one snapshot, every write still lands, and a write by
another task or storage is never hidden by a snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import psycopg
import pytest
from aiogram import Bot, Dispatcher
from aiogram.fsm.storage.base import StorageKey
from aiogram_dialog import setup_dialogs
from asgiref.sync import async_to_sync
from django.db import connection

from botdialogs.models import DialogContext, DialogStack
from botdialogs.storage import DjangoStorage
from botdialogs.testing import callback_update, message_update
from botdialogs.testing.bots import counter_router

pytestmark = pytest.mark.django_db(transaction=True)
CHAT = 5301


def plain_dispatcher(storage: DjangoStorage) -> Dispatcher:
    """What most aiogram users write first: no events_isolation anywhere."""
    dispatcher = Dispatcher(storage=storage)
    dispatcher.include_router(counter_router())
    setup_dialogs(dispatcher)
    return dispatcher


def press_update(chat_id: int) -> dict[str, Any]:
    stack = DialogStack.objects.get(chat_id=chat_id, stack_id="")
    return callback_update(chat_id, f"{stack.intents[-1]}\x1dinc", message_id=stack.last_message_id)


def run(storage: DjangoStorage, work: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``work`` on a fresh event loop, closing the storage's connections of that loop."""

    async def main() -> Any:
        try:
            return await work()
        finally:
            await storage.close()

    return async_to_sync(main)()


def count_query_strings(action: Callable[[], Any]) -> int:
    """Query strings sent to PostgreSQL while ``action`` runs (one round trip each)."""
    sent: list[str] = []
    original = psycopg.AsyncClientCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return await original(self, query, *args, **kwargs)

    with mock.patch.object(psycopg.AsyncClientCursor, "execute", execute):
        action()
    return len(sent)


def key(chat_id: int = CHAT, destiny: str = "default") -> StorageKey:
    return StorageKey(bot_id=42, chat_id=chat_id, user_id=chat_id, destiny=destiny)


def test_every_press_counts_with_one_read_and_one_write(recording_bot: Bot) -> None:
    storage = DjangoStorage()
    dispatcher = plain_dispatcher(storage)
    run(storage, lambda: dispatcher.feed_raw_update(recording_bot, message_update(CHAT, "/start")))

    for expected in (1, 2, 3):
        press = press_update(CHAT)

        def feed_press(update: dict[str, Any] = press) -> None:
            run(storage, lambda: dispatcher.feed_raw_update(recording_bot, update))

        sent = count_query_strings(feed_press)
        if connection.vendor == "postgresql":
            # The chat's snapshot (aiogram's FSM read), then the changed context's write.
            assert sent == 2
        assert recording_bot.session.texts()[-1] == f"Count: {expected}"
    assert DialogContext.objects.get(chat_id=CHAT).dialog_data == {"count": 3}


def test_chats_pressed_at_once_keep_their_own_counts(recording_bot: Bot) -> None:
    """One task per chat, three presses each, all chats at once: each update's snapshot is
    its own chat's (one chat's presses at once are not serialised without an isolation, by
    any storage: aiogram_dialog reads the context before it locks the stack)."""
    storage = DjangoStorage()
    dispatcher = plain_dispatcher(storage)
    chats = range(CHAT, CHAT + 4)
    for chat_id in chats:
        start = message_update(chat_id, "/start")
        run(storage, lambda update=start: dispatcher.feed_raw_update(recording_bot, update))
    presses = {chat_id: press_update(chat_id) for chat_id in chats}

    async def press_all() -> None:
        async def three(chat_id: int) -> None:
            for _ in range(3):
                await dispatcher.feed_raw_update(recording_bot, dict(presses[chat_id]))

        await asyncio.gather(*(three(chat_id) for chat_id in chats))

    run(storage, press_all)

    for chat_id in chats:
        assert DialogContext.objects.get(chat_id=chat_id).dialog_data == {"count": 3}


def test_a_write_by_another_task_or_storage_reaches_a_snapshot() -> None:
    storage, other = DjangoStorage(), DjangoStorage()

    async def work() -> list[dict[str, Any]]:
        await storage.set_data(key(destiny="notes"), {"n": 1})
        seen = []
        await storage.get_state(key())  # starts this task's snapshot of the chat
        seen.append(await storage.get_data(key(destiny="notes")))
        await asyncio.create_task(storage.set_data(key(destiny="notes"), {"n": 2}))
        seen.append(await storage.get_data(key(destiny="notes")))
        await storage.get_state(key())
        await other.set_data(key(destiny="notes"), {"n": 3})
        seen.append(await storage.get_data(key(destiny="notes")))
        await other.close()
        return seen

    assert run(storage, work) == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_snapshot_serves_its_own_task_and_chat_only() -> None:
    storage = DjangoStorage()

    async def work() -> tuple[dict[str, Any], dict[str, Any]]:
        await storage.get_state(key())  # an empty chat: the snapshot holds nothing
        await storage.set_data(key(chat_id=CHAT + 1, destiny="notes"), {"other": "chat"})

        async def child() -> dict[str, Any]:
            # A task started inside the update copies its context, not its snapshot.
            return await storage.get_data(key(destiny="notes"))

        writer = DjangoStorage()
        await writer.set_data(key(destiny="notes"), {"written": "meanwhile"})
        await writer.close()
        from_child = await asyncio.create_task(child())
        return from_child, await storage.get_data(key(chat_id=CHAT + 1, destiny="notes"))

    from_child, other_chat = run(storage, work)
    assert from_child == {"written": "meanwhile"}
    assert other_chat == {"other": "chat"}


def test_an_unchanged_write_is_not_sent_and_a_changed_one_is() -> None:
    storage, reader = DjangoStorage(), DjangoStorage()
    plans: list[Any] = []
    write = storage.database.write

    async def counted_write(plan: Any) -> None:
        plans.append(plan)
        await write(plan)

    storage.database.write = counted_write  # type: ignore[method-assign]

    async def work() -> dict[str, Any]:
        await storage.set_data(key(destiny="notes"), {"n": 1})
        await storage.get_state(key())
        await storage.set_data(key(destiny="notes"), {"n": 1})  # the same again: not sent
        await storage.set_data(key(destiny="notes"), {"n": 2})
        stored = await reader.get_data(key(destiny="notes"))
        await reader.close()
        return stored

    assert run(storage, work) == {"n": 2}
    assert len(plans) == 2
