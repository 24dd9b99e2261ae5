"""Moving in from Redis: ``manage.py botdialogs_import_redis`` copies what a bot left in
aiogram's RedisStorage (plain FSM and aiogram_dialog's stacks and contexts) into botdialogs'
tables, and the same dialogs go on on DjangoStorage.

The Redis side is the real thing: aiogram's RedisStorage under a Dispatcher with
aiogram_dialog, on this run's Redis (``TEST_REDIS_URL``), each test under a key prefix of its
own.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs
from aiogram_dialog.widgets.kbd import Button, Checkbox
from aiogram_dialog.widgets.text import Const, Format
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import strategies as st
from redis import Redis

from botdialogs.engine import bots
from botdialogs.models import DialogContext, DialogStack, FsmRecord
from botdialogs.storage import DjangoStorage
from botdialogs.storage.redis_keys import BadRedisKey, RedisKeyLayout
from botdialogs.testing import RecordingSession, callback_update, message_update
from botdialogs.testing.queues import redis_url

REDIS_URL = redis_url()
CHAT = 7001
BOTS = {
    "BOTS": {
        "default": {"ROUTER": "tests.storage.test_import_redis.build_router"},
        "second": {"ROUTER": "tests.storage.test_import_redis.build_router"},
    }
}


# -- the bot: a dialog with dialog_data and widget_data, and a plain FSM form -----------------
class Points(StatesGroup):
    main = State()


class Form(StatesGroup):
    name = State()


async def add_point(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    manager.dialog_data["points"] = manager.dialog_data.get("points", 0) + 1


async def points_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    fast = dialog_manager.find("fast")
    assert fast is not None
    return {
        "points": dialog_manager.dialog_data.get("points", 0),
        "fast": "on" if fast.is_checked() else "off",  # type: ignore[attr-defined]
    }


async def start_points(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(Points.main, mode=StartMode.RESET_STACK)


async def start_form(message: Message, state: FSMContext) -> None:
    await state.set_state(Form.name)
    await state.update_data(step=1)
    await message.answer("Your name?")


async def finish_form(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    await message.answer(f"Thanks {message.text}, step {data['step']}")
    await state.clear()


def build_router() -> Router:
    """This test's bot (a new router each call: a router joins one Dispatcher)."""
    router = Router(name="import-redis")
    router.message.register(start_points, CommandStart())
    router.message.register(start_form, Command("form"))
    router.message.register(finish_form, Form.name, F.text)
    router.include_router(
        Dialog(
            Window(
                Format("Points: {points}, fast: {fast}"),
                Button(Const("Add"), id="add", on_click=add_point),
                Checkbox(Const("Fast: on"), Const("Fast: off"), id="fast"),
                state=Points.main,
                getter=points_getter,
            )
        )
    )
    return router


# -- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted after it."""
    name = f"test-import-{uuid.uuid4().hex[:12]}"
    yield name
    client = Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=f"{name}*", count=500):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def bot(settings: Any) -> Bot:
    settings.BOTDIALOGS = BOTS
    return Bot(bots.bot_token("default"), session=RecordingSession())


def converse(
    make_storage: Callable[[], BaseStorage], bot: Bot, *updates: Callable[[], Awaitable[dict]]
) -> None:
    """Feed updates to a fresh Dispatcher of this test's bot on a storage made in the loop."""

    async def run() -> None:
        storage = make_storage()
        isolation = storage.create_isolation()  # type: ignore[attr-defined]
        dispatcher = Dispatcher(storage=storage, events_isolation=isolation)
        dispatcher.include_router(build_router())
        setup_dialogs(dispatcher, events_isolation=isolation)
        try:
            for update in updates:
                await dispatcher.feed_raw_update(bot, await update())
        finally:
            await storage.close()

    async_to_sync(run)()


def redis_storage(layout: RedisKeyLayout) -> Callable[[], BaseStorage]:
    return lambda: RedisStorage.from_url(REDIS_URL, key_builder=layout.key_builder())


def text(chat_id: int, words: str) -> Callable[[], Awaitable[dict]]:
    async def update() -> dict:
        return message_update(chat_id, words)

    return update


def press(
    storage: Callable[[], BaseStorage], bot: Bot, chat_id: int, widget_id: str
) -> Callable[[], Awaitable[dict]]:
    """A press of a button of the top dialog, as stored in ``storage`` when it is sent."""

    async def update() -> dict:
        reader = storage()
        try:
            stack_key = StorageKey(bot.id, chat_id, chat_id, destiny="aiogd:stack:")
            stack = await reader.get_data(stack_key)
        finally:
            await reader.close()
        data = f"{stack['intents'][-1]}\x1d{widget_id}"
        return callback_update(chat_id, data, message_id=stack["last_message_id"])

    return update


def import_redis(*options: str, fails: bool = False) -> tuple[str, str]:
    """Run the command; its stdout and stderr (ending in its CommandError if it ``fails``)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        call_command(
            "botdialogs_import_redis", "--url", REDIS_URL, *options, stdout=stdout, stderr=stderr
        )
    except CommandError as error:
        if not fails:
            raise
        return stdout.getvalue(), f"{stderr.getvalue()}CommandError: {error}"
    assert not fails, "the import did not fail"
    return stdout.getvalue(), stderr.getvalue()


def rows() -> dict[str, list[dict[str, Any]]]:
    """Every row botdialogs keeps of dialog state, without the time it was written."""
    tables = {"fsm": FsmRecord, "stacks": DialogStack, "contexts": DialogContext}
    result = {}
    for name, model in tables.items():
        values = list(model.objects.order_by("pk").values())  # type: ignore[attr-defined]
        for row in values:
            row.pop("updated_at")
        result[name] = values
    return result


def fill_redis(bot: Bot, prefix: str) -> RedisKeyLayout:
    """A user in the points dialog (two presses) and another half-way through the form."""
    layout = RedisKeyLayout(prefix=prefix, with_destiny=True)
    on_redis = redis_storage(layout)
    converse(
        on_redis,
        bot,
        text(CHAT, "/start"),
        press(on_redis, bot, CHAT, "add"),
        press(on_redis, bot, CHAT, "fast:0"),  # the checkbox, unchecked so far
        text(CHAT + 1, "/form"),
    )
    return layout


# -- the tests --------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_dialogs_go_on_on_django_storage_after_the_import(bot: Bot, prefix: str) -> None:
    fill_redis(bot, prefix)
    session: RecordingSession = bot.session  # type: ignore[assignment]
    assert session.texts()[-2:] == ["Points: 1, fast: on", "Your name?"]
    assert rows() == {"fsm": [], "stacks": [], "contexts": []}

    stdout, _ = import_redis("--key-prefix", prefix, "--with-destiny")

    assert "Copied 4 of 4 keys: 1 FSM states, 1 FSM data, 1 dialog stacks, 1 dialog " in stdout
    context = DialogContext.objects.get(chat_id=CHAT)
    assert (context.state, context.dialog_data) == ("Points:main", {"points": 1})
    assert context.widget_data == {"fast": True}
    stack = DialogStack.objects.get(chat_id=CHAT)
    assert (stack.state, stack.intents, context.stack) == (
        "Points:main",
        [context.intent_id],
        stack,
    )

    # The same users go on, now on botdialogs' tables: the button sees the copied data.
    converse(DjangoStorage, bot, press(DjangoStorage, bot, CHAT, "add"), text(CHAT + 1, "Ann"))
    assert session.texts()[-2:] == ["Points: 2, fast: on", "Thanks Ann, step 1"]
    assert DialogContext.objects.get(chat_id=CHAT).dialog_data == {"points": 2}
    assert not FsmRecord.objects.filter(chat_id=CHAT + 1).exists()  # the form ended


@pytest.mark.django_db(transaction=True)
def test_a_second_import_leaves_the_same_rows(bot: Bot, prefix: str) -> None:
    fill_redis(bot, prefix)
    import_redis("--key-prefix", prefix, "--with-destiny")
    first = rows()

    import_redis("--key-prefix", prefix, "--with-destiny")

    assert rows() == first
    assert [len(first[table]) for table in ("fsm", "stacks", "contexts")] == [1, 1, 1]


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_says_what_it_would_copy_and_writes_nothing(bot: Bot, prefix: str) -> None:
    fill_redis(bot, prefix)

    stdout, _ = import_redis("--key-prefix", prefix, "--with-destiny", "--dry-run")

    assert "Would copy 4 of 4 keys: 1 FSM states, 1 FSM data, 1 dialog stacks, 1 dia" in stdout
    assert "Dry run: nothing was written." in stdout
    assert rows() == {"fsm": [], "stacks": [], "contexts": []}


@pytest.mark.django_db(transaction=True)
def test_progress_bar_on_stderr_and_quiet_at_verbosity_0(bot: Bot, prefix: str) -> None:
    fill_redis(bot, prefix)

    stdout, stderr = import_redis("--key-prefix", prefix, "--with-destiny", "--batch-size", "1")
    assert "[" + "#" * 30 + "] 4/4 keys" in stderr
    assert "] 0/4 keys" in stderr  # drawn before the first batch too
    assert "Copied 4 of 4 keys" in stdout

    stdout, stderr = import_redis("--key-prefix", prefix, "--with-destiny", "--verbosity", "0")
    assert (stdout, stderr) == ("", "")
    assert len(rows()["contexts"]) == 1


# Each layout of aiogram's DefaultKeyBuilder, with keys that use every optional part.
LAYOUTS = {
    "aiogram default": dict(),
    "botdialogs' own RedisStorage": dict(
        with_bot_id=True, with_business_connection_id=True, with_destiny=True
    ),
    "separator and destiny": dict(separator="|", with_destiny=True),
    "bot id and business": dict(with_bot_id=True, with_business_connection_id=True),
}
KEY_VARIANTS = [
    dict(),
    dict(chat_id=-1001234567890, user_id=42, thread_id=17),
    dict(business_connection_id="AbC-123_x", user_id=43),
    dict(business_connection_id="AbC-123_x", thread_id=5, user_id=44),
    dict(destiny="aiogd:context:Xy12"),
    dict(destiny="aiogd:stack:<45>", user_id=CHAT, thread_id=9),
    dict(destiny="custom:2"),
]


@pytest.mark.parametrize("options", LAYOUTS.values(), ids=list(LAYOUTS))
@pytest.mark.django_db(transaction=True)
def test_each_key_layout_is_read_back_exactly(
    bot: Bot, prefix: str, options: dict[str, Any]
) -> None:
    layout = RedisKeyLayout(prefix=prefix, **options)
    keys = []
    for variant in KEY_VARIANTS:
        key = StorageKey(**{"bot_id": bot.id, "chat_id": CHAT, "user_id": CHAT, **variant})
        if (key.destiny != "default" and not layout.with_destiny) or (
            key.business_connection_id and not layout.with_business_connection_id
        ):
            continue  # the layout cannot tell such keys apart: aiogram refuses or merges them
        keys.append(key)

    async def fill() -> None:
        storage = redis_storage(layout)()
        for number, key in enumerate(keys):
            await storage.set_state(key, f"Group:state{number}")
            data = {"_intent_id": "Xy12", "state": "G:s"} if "context" in key.destiny else {}
            data = {"intents": [], "_id": "<45>"} if "stack" in key.destiny else data
            await storage.set_data(key, data or {"number": number})
        await storage.close()

    async def read(storage: BaseStorage) -> list[tuple[str | None, dict[str, Any]]]:
        try:
            return [(await storage.get_state(k), await storage.get_data(k)) for k in keys]
        finally:
            await storage.close()

    async_to_sync(fill)()
    flags = [f"--{name.replace('_', '-')}" for name, on in options.items() if on is True]
    separator = ["--separator", options["separator"]] if "separator" in options else []
    stdout, _ = import_redis("--key-prefix", prefix, "--bot", "default", *flags, *separator)

    assert f"Copied {2 * len(keys)} of {2 * len(keys)} keys" in stdout
    redis_side = async_to_sync(read)(redis_storage(layout)())
    assert async_to_sync(read)(DjangoStorage()) == redis_side


@pytest.mark.django_db(transaction=True)
def test_bot_option_names_the_bot_of_keys_without_one_and_filters_keys_with_one(
    bot: Bot, prefix: str
) -> None:
    second = bots.bot_id("second")

    async def fill(layout: RedisKeyLayout) -> None:
        storage = redis_storage(layout)()
        for bot_id in (bot.id, second):
            await storage.set_state(StorageKey(bot_id, CHAT, CHAT), "Form:name")
        await storage.close()

    # Keys without a bot id are the --bot's.
    async_to_sync(fill)(RedisKeyLayout(prefix=prefix))
    import_redis("--key-prefix", prefix, "--bot", "second")
    assert list(FsmRecord.objects.values_list("bot_id", "state")) == [(second, "Form:name")]
    FsmRecord.objects.all().delete()

    # Keys with one: --bot copies that bot's only; without it, every bot's.
    with_bot = f"{prefix}-bots"
    async_to_sync(fill)(RedisKeyLayout(prefix=with_bot, with_bot_id=True))
    import_redis("--key-prefix", with_bot, "--with-bot-id", "--bot", "second")
    assert list(FsmRecord.objects.values_list("bot_id", flat=True)) == [second]
    import_redis("--key-prefix", with_bot, "--with-bot-id")
    assert sorted(FsmRecord.objects.values_list("bot_id", flat=True)) == sorted([bot.id, second])

    with pytest.raises(CommandError, match="No bot named 'third'"):
        import_redis("--key-prefix", prefix, "--bot", "third")


@pytest.mark.django_db(transaction=True)
def test_bad_keys_and_values_are_skipped_with_a_message(bot: Bot, prefix: str) -> None:
    fill_redis(bot, prefix)
    client = Redis.from_url(REDIS_URL)
    bad = {
        f"{prefix}:abc:{CHAT}:default:state": "does not fit the key layout",
        f"{prefix}:{CHAT}:{CHAT}:default:extra": "not in state or data",
        f"{prefix}:{CHAT}:{CHAT}": "not in state or data",
        f"{prefix}:9:9:default:data": "not JSON",
        f"{prefix}:9:10:default:data": "JSON list",
        f"{prefix}:9:11:default:data": "NaN and Infinity",
        f"{prefix}:9:12:aiogd:context:abc:data": "intent 'other'",
        f"{prefix}:9:13:aiogd:stack::data": "no list of intent ids",
        f"{prefix}:9:14:default:state": "not UTF-8",
        f"{prefix}:9:15:default:data": "Redis hash",
    }
    try:
        client.set(f"{prefix}:abc:{CHAT}:default:state", "Points:main")
        client.set(f"{prefix}:{CHAT}:{CHAT}:default:extra", "x")
        client.set(f"{prefix}:{CHAT}:{CHAT}", "x")
        client.set(f"{prefix}:9:9:default:data", "{not json")
        client.set(f"{prefix}:9:10:default:data", "[1, 2]")
        client.set(f"{prefix}:9:11:default:data", '{"x": NaN}')
        client.set(f"{prefix}:9:12:aiogd:context:abc:data", '{"_intent_id": "other"}')
        client.set(f"{prefix}:9:13:aiogd:stack::data", '{"intents": "abc"}')
        client.set(f"{prefix}:9:14:default:state", b"\xff\xfe")
        client.hset(f"{prefix}:9:15:default:data", "a", "b")
    finally:
        client.close()

    _, stderr = import_redis("--key-prefix", prefix, "--with-destiny", fails=True)

    assert stderr.endswith(
        "CommandError: 10 key(s) skipped (listed above); every other key was copied"
    )
    for name, reason in bad.items():
        line = next(line for line in stderr.splitlines() if line.startswith(f"Skipped {name}:"))
        assert reason in line, line
    # Every good key was copied all the same, and the dialog goes on.
    assert len(rows()["contexts"]) == 1
    converse(DjangoStorage, bot, press(DjangoStorage, bot, CHAT, "add"))
    assert bot.session.texts()[-1] == "Points: 2, fast: on"  # type: ignore[attr-defined]


# -- key parsing, without services ------------------------------------------------------------
destinies = st.one_of(
    st.just("default"),
    st.builds(lambda i: f"aiogd:context:{i}", st.text("abcXYZ019", min_size=1, max_size=8)),
    st.builds(lambda i: f"aiogd:stack:{i}", st.sampled_from(["", "<7>", "s1"])),
    st.text("abc:_-", min_size=1, max_size=10).filter(lambda d: not d[0].isdigit()),
)


@given(
    layout=st.builds(
        RedisKeyLayout,
        prefix=st.sampled_from(["fsm", "my:bot", "x*[y]"]),
        separator=st.sampled_from([":", "|", "::"]),
        with_bot_id=st.booleans(),
        with_business_connection_id=st.booleans(),
        with_destiny=st.just(True),
    ),
    chat_id=st.integers(-(10**13), 10**13),
    user_id=st.integers(1, 10**10),
    thread_id=st.one_of(st.none(), st.integers(1, 10**6)),
    connection=st.one_of(st.none(), st.text("aZ_-09", min_size=1, max_size=12)),
    destiny=destinies,
)
def test_a_key_reads_back_as_the_storage_key_aiogram_built_it_from(
    layout: RedisKeyLayout,
    chat_id: int,
    user_id: int,
    thread_id: int | None,
    connection: str | None,
    destiny: str,
) -> None:
    if connection is not None and connection.lstrip("-").isdigit():
        connection = f"b{connection}"  # an all-digit id reads as a chat id (documented)
    if not layout.with_business_connection_id:
        connection = None
    if destiny.startswith("aiogd:"):
        user_id = chat_id  # aiogram_dialog's keys
    key = StorageKey(7, chat_id, user_id, thread_id, connection, destiny)
    for part in ("state", "data"):
        name = layout.key_builder().build(key, part)  # type: ignore[arg-type]
        assert layout.parse(name, bot_id=7) == (key, part)


def test_a_key_of_another_layout_is_refused_with_a_hint() -> None:
    with pytest.raises(BadRedisKey, match="with_destiny=True"):
        RedisKeyLayout().parse("fsm:1:1:aiogd:stack::data", bot_id=7)
    with pytest.raises(BadRedisKey, match="does not start with 'fsm:'"):
        RedisKeyLayout().parse("other:1:1:data", bot_id=7)


@pytest.mark.django_db(transaction=True)
def test_the_import_refuses_a_site_whose_storage_is_not_django_storage(settings: Any) -> None:
    settings.BOTDIALOGS = {
        **BOTS,
        "STORAGE": {"BACKEND": "aiogram.fsm.storage.memory.MemoryStorage", "CONFIG": {}},
    }
    with pytest.raises(CommandError, match="BOTDIALOGS\\['STORAGE'\\] is MemoryStorage"):
        import_redis("--with-destiny")
