"""DjangoStorage inside real updates: tables, one transaction per update, round trips, expiry,
stale state, and the storage setting."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from unittest import mock

import psycopg
import pytest
from aiogram import Bot
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import RedisEventIsolation, RedisStorage
from aiogram.methods import AnswerCallbackQuery, SendMessage
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from botdialogs.engine import bots
from botdialogs.exceptions import IntentIdCollision, UnstorableData
from botdialogs.models import DialogContext, DialogStack, TelegramChat
from botdialogs.storage import DjangoStorage
from botdialogs.storage.isolation import LocalEventIsolation
from botdialogs.storage.orm import OrmDatabase
from botdialogs.storage.storage import UnitOfWorkIsolation
from botdialogs.testing import RecordingSession, callback_update, message_update
from botdialogs.testing.bots import Failing
from botdialogs.testing.queues import redis_url

pytestmark = pytest.mark.django_db(transaction=True)
CHAT = 5001
COUNTER_BOT = {"BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}}}


def feed(bot: Bot, update: dict[str, Any]) -> None:
    """Feed one raw update to the default bot's Dispatcher, from sync test code."""
    async_to_sync(bots.get_dispatcher("default").feed_raw_update)(bot, update)


def button(chat_id: int, widget_id: str) -> dict[str, Any]:
    stack = DialogStack.objects.get(chat_id=chat_id, stack_id="")
    data = f"{stack.intents[-1]}\x1d{widget_id}"
    return callback_update(chat_id, data, message_id=stack.last_message_id)


def stored(chat_id: int) -> tuple[list[Any], list[Any]]:
    stacks = list(DialogStack.objects.filter(chat_id=chat_id).values())
    contexts = list(DialogContext.objects.filter(chat_id=chat_id).order_by("pk").values())
    for row in stacks + contexts:
        row.pop("updated_at")
    return stacks, contexts


@pytest.fixture
def counter_bot(settings: Any, recording_bot: Bot) -> Bot:
    settings.BOTDIALOGS = COUNTER_BOT
    return recording_bot


def test_dialog_state_is_stored_in_real_columns(counter_bot: Bot) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    feed(counter_bot, button(CHAT, "inc"))
    feed(counter_bot, button(CHAT, "inc"))

    stack = DialogStack.objects.get(chat_id=CHAT)
    assert stack.state == "Counter:main"
    assert stack.depth == 1
    context = DialogContext.objects.get(chat_id=CHAT)
    assert context.stack == stack
    assert context.state == "Counter:main"
    assert context.dialog_data == {"count": 2}
    assert counter_bot.session.texts()[-1] == "Count: 2"
    chat = TelegramChat.objects.get(chat_id=CHAT)
    assert (chat.user_id, chat.first_name) == (CHAT, "Ann")


DATA_STATEMENTS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def count_statements(storage: DjangoStorage, action: Any) -> tuple[list[str], int]:
    """The storage's data statements while ``action`` runs, and the query strings sent
    (round trips: each string is one simple-query message on PostgreSQL)."""
    database = storage.database
    if isinstance(database, OrmDatabase):
        with CaptureQueriesContext(connection) as captured:
            action()
        sql = [q["sql"] for q in captured.captured_queries]
        return [s for s in sql if s.startswith(DATA_STATEMENTS)], len(sql)
    sent: list[str] = []
    original = psycopg.AsyncClientCursor.execute

    async def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(str(query))
        return await original(self, query, *args, **kwargs)

    with mock.patch.object(psycopg.AsyncClientCursor, "execute", execute):
        action()
    statements = [part for query in sent for part in query.split("; ")]
    data = [s for s in statements if s.startswith(DATA_STATEMENTS) and "pg_advisory" not in s]
    return data, len(sent)


def test_one_read_and_one_write_per_update(counter_bot: Bot) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    press = button(CHAT, "inc")
    storage = bots.get_storage()

    statements, round_trips = count_statements(storage, lambda: feed(counter_bot, press))

    # Reads: FSM records, stacks, contexts, node states and chat rows of this chat. Writes:
    # only the changed context; the stack and the chat did not change.
    assert len(statements) == 5 + 1, statements
    if connection.vendor == "postgresql":
        # Lock and reads; write, COMMIT and unlock (tests/http/test_round_trips.py counts them at
        # the server).
        assert round_trips == 2
    assert DialogContext.objects.get(chat_id=CHAT).dialog_data == {"count": 1}


def test_failed_update_stores_nothing(counter_bot: Bot) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    feed(counter_bot, button(CHAT, "inc"))
    before = stored(CHAT)

    with pytest.raises(Failing):
        feed(counter_bot, button(CHAT, "boom"))

    assert stored(CHAT) == before
    assert DialogContext.objects.get(chat_id=CHAT).dialog_data == {"count": 1}


def test_unstorable_data_fails_at_set_data() -> None:
    storage = DjangoStorage()
    key = StorageKey(bot_id=1, chat_id=2, user_id=2)
    with pytest.raises(UnstorableData, match="datetime"):
        async_to_sync(storage.set_data)(key, {"when": timezone.now()})
    with pytest.raises(UnstorableData, match="set"):
        async_to_sync(storage.set_data)(key, {"tags": {"a"}})
    assert async_to_sync(storage.get_data)(key) == {}


def test_backend_chooses_how_the_storage_reaches_the_database() -> None:
    assert isinstance(DjangoStorage(backend="orm").database, OrmDatabase)
    auto = DjangoStorage().database
    assert type(auto).__name__ == (
        "PostgresDatabase" if connection.vendor == "postgresql" else "OrmDatabase"
    )
    with pytest.raises(ValueError, match="backend must be one of auto, orm, psycopg, not 'pg'"):
        DjangoStorage(backend="pg")


def json_nested(depth: int) -> list[Any]:
    nested: list[Any] = []
    for _ in range(depth):
        nested = [nested]
    return nested


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"price": float("nan")}, "NaN and Infinity"),
        ({"cart": [1, float("inf")]}, "NaN and Infinity"),
        ({"deep": {"er": -float("inf")}}, "NaN and Infinity"),
        ({"name": "Ann\x00"}, "NUL character"),
        ({"key\x00": 1}, "NUL character"),
        ({"nested": json_nested(100_000)}, "nested too deeply"),
    ],
    ids=["nan", "inf", "minus-inf", "nul-value", "nul-key", "deep"],
)
def test_data_jsonb_would_refuse_fails_at_set_data(data: dict[str, Any], reason: str) -> None:
    storage = DjangoStorage()
    key = StorageKey(bot_id=1, chat_id=2, user_id=2)
    with pytest.raises(UnstorableData, match=reason):
        async_to_sync(storage.set_data)(key, data)
    # A backslash before "u0000" is ordinary text, not a NUL.
    async_to_sync(storage.set_data)(key, {"path": "C:\\u0000", "price": 1.5})
    assert async_to_sync(storage.get_data)(key) == {"path": "C:\\u0000", "price": 1.5}


def test_a_stack_naming_one_intent_twice_is_refused() -> None:
    storage = DjangoStorage()
    key = StorageKey(bot_id=1, chat_id=2, user_id=2, destiny="aiogd:stack:")
    with pytest.raises(IntentIdCollision, match="'a1'"):
        async_to_sync(storage.set_data)(key, {"_id": "", "intents": ["a1", "b2", "a1"]})
    assert async_to_sync(storage.get_data)(key) == {}


def _dialog_rows(storage: DjangoStorage, chat_id: int) -> None:
    key = {"bot_id": 1, "chat_id": chat_id, "user_id": chat_id}
    context = {
        "_intent_id": "i1",
        "_stack_id": "",
        "state": "Counter:main",
        "start_data": None,
        "dialog_data": {"count": 1},
        "widget_data": {},
        "access_settings": None,
    }
    async_to_sync(storage.set_data)(StorageKey(**key, destiny="aiogd:context:i1"), context)
    stack = {"_id": "", "intents": ["i1"], "last_message_id": 1}
    async_to_sync(storage.set_data)(StorageKey(**key, destiny="aiogd:stack:"), stack)


def test_stack_and_its_contexts_expire_together() -> None:
    storage = DjangoStorage(data_ttl=60, state_ttl=60)
    _dialog_rows(storage, CHAT)
    key = {"bot_id": 1, "chat_id": CHAT, "user_id": CHAT}
    stack_key = StorageKey(**key, destiny="aiogd:stack:")
    context_key = StorageKey(**key, destiny="aiogd:context:i1")
    assert async_to_sync(storage.get_data)(context_key)["dialog_data"] == {"count": 1}
    assert DialogContext.objects.get(chat_id=CHAT).stack is not None

    # The stack's time runs out; its context, written at the same time, goes with it.
    DialogStack.objects.filter(chat_id=CHAT).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert async_to_sync(storage.get_data)(stack_key) == {}
    assert async_to_sync(storage.get_data)(context_key) == {}


def test_expired_fsm_state_reads_empty() -> None:
    storage = DjangoStorage(state_ttl=timedelta(seconds=30))
    key = StorageKey(bot_id=1, chat_id=CHAT, user_id=CHAT)
    async_to_sync(storage.set_state)(key, "A:b")
    async_to_sync(storage.set_data)(key, {"kept": True})
    assert async_to_sync(storage.get_state)(key) == "A:b"
    from botdialogs.models import FsmRecord

    record = FsmRecord.objects.get(chat_id=CHAT)
    assert record.data_expires_at is None
    FsmRecord.objects.filter(pk=record.pk).update(state_expires_at=timezone.now())
    assert async_to_sync(storage.get_state)(key) is None
    assert async_to_sync(storage.get_data)(key) == {"kept": True}


def test_renamed_state_resets_the_stack_with_a_message(
    counter_bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    # A deploy renamed the state the user is in.
    DialogContext.objects.filter(chat_id=CHAT).update(state="Counter:renamed")
    session: RecordingSession = counter_bot.session
    sent_before = len(session.calls)

    with caplog.at_level(logging.WARNING, logger="botdialogs"):
        feed(counter_bot, message_update(CHAT, "hello"))

    new_calls = session.calls[sent_before:]
    texts = [c.text for c in new_calls if isinstance(c, SendMessage)]
    assert texts == [bots.get_settings().stale_state_message]
    assert "Resetting dialog stack" in caplog.text
    assert not DialogContext.objects.filter(chat_id=CHAT).exists()
    # The next message starts fresh instead of failing again.
    feed(counter_bot, message_update(CHAT, "/start"))
    assert session.texts()[-1] == "Count: 0"


def test_old_button_gets_a_short_answer(counter_bot: Bot) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    old = button(CHAT, "inc")
    feed(counter_bot, message_update(CHAT, "/start"))  # resets the stack: a new intent id

    feed(counter_bot, old)

    answer = counter_bot.session.calls[-1]
    assert isinstance(answer, AnswerCallbackQuery)
    assert answer.text == bots.get_settings().old_button_answer


@pytest.mark.parametrize(
    ("backend", "storage_type", "isolation_type"),
    [
        ("botdialogs.storage.DjangoStorage", DjangoStorage, UnitOfWorkIsolation),
        ("aiogram.fsm.storage.memory.MemoryStorage", MemoryStorage, LocalEventIsolation),
        ("aiogram.fsm.storage.redis.RedisStorage", RedisStorage, RedisEventIsolation),
    ],
)
def test_storage_is_a_setting_and_the_counter_bot_runs_on_each(
    settings: Any, backend: str, storage_type: type, isolation_type: type, recording_bot: Bot
) -> None:

    config = {"url": redis_url()}
    settings.BOTDIALOGS = {
        "BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}},
        "STORAGE": {"BACKEND": backend, "CONFIG": config if "Redis" in backend else {}},
    }
    storage = bots.get_storage()
    assert isinstance(storage, storage_type)
    assert isinstance(bots.get_event_isolation(), isolation_type)
    if isinstance(storage, RedisStorage):
        assert storage.key_builder.with_destiny and storage.key_builder.with_bot_id

    async def converse() -> None:
        if isinstance(storage, RedisStorage):
            # Redis outlives the run: a stack of another bot left for this chat would be
            # recovered from (its state unknown here) instead of started.
            async for key in storage.redis.scan_iter(match=f"fsm:*:{CHAT}:*"):
                await storage.redis.delete(key)
        dispatcher = bots.get_dispatcher("default")
        for update in (message_update(CHAT, "/start"),):
            await dispatcher.feed_raw_update(recording_bot, update)
        await storage.close()

    async_to_sync(converse)()
    assert recording_bot.session.texts()[-1] == "Count: 0"
    assert DialogStack.objects.filter(chat_id=CHAT).exists() == (storage_type is DjangoStorage)


def member_update(chat_id: int, status: str) -> dict[str, Any]:
    """Telegram's my_chat_member update for the bot in a private chat."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ann", "username": "ann"}
    bot = {"id": 1, "is_bot": True, "first_name": "Bot"}
    return {
        "update_id": chat_id * 10 + len(status),
        "my_chat_member": {
            "chat": {"id": chat_id, "type": "private", "first_name": "Ann"},
            "from": user,
            "date": 0,
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": {"status": status, "user": bot, "until_date": 0}
            if status == "kicked"
            else {"status": status, "user": bot},
        },
    }


def test_a_user_who_blocks_the_bot_is_marked_and_unmarked_when_back(counter_bot: Bot) -> None:
    feed(counter_bot, message_update(CHAT, "/start"))
    assert TelegramChat.objects.get(chat_id=CHAT).is_blocked is False

    feed(counter_bot, member_update(CHAT, "kicked"))
    assert TelegramChat.objects.get(chat_id=CHAT).is_blocked is True

    feed(counter_bot, message_update(CHAT, "/start"))
    assert TelegramChat.objects.get(chat_id=CHAT).is_blocked is False


def test_drop_in_dispatcher_gets_one_transaction_per_update(recording_bot: Bot) -> None:
    """A plain aiogram Dispatcher with aiogram's own FSM middleware: one documented argument
    (the storage's isolation) and each update is one unit of work."""
    from aiogram import Dispatcher
    from aiogram_dialog import setup_dialogs

    from botdialogs.testing.bots import counter_router

    storage = DjangoStorage()
    isolation = storage.create_isolation()
    dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
    dispatcher.include_router(counter_router())
    setup_dialogs(dispatcher, events_isolation=isolation)

    def feed_plain(update: dict[str, Any]) -> None:
        async def run() -> None:
            await dispatcher.feed_raw_update(recording_bot, update)
            await storage.close()

        async_to_sync(run)()

    feed_plain(message_update(CHAT, "/start"))
    press = button(CHAT, "inc")
    statements, round_trips = count_statements(storage, lambda: feed_plain(press))

    assert len(statements) == 5 + 1, statements  # five reads (with node states), one write
    if connection.vendor == "postgresql":
        assert round_trips == 2
    assert DialogContext.objects.get(chat_id=CHAT).dialog_data == {"count": 1}
    assert recording_bot.session.texts()[-1] == "Count: 1"
