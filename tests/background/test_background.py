"""botdialogs.background in one process: sync API, on_commit, the async BgManager and fg()."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import EditMessageText, SendMessage
from aiogram.types import Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.api.entities import DIALOG_EVENT_NAME
from aiogram_dialog.manager.bg_manager import BgManager
from aiogram_dialog.widgets.text import Format
from asgiref.sync import async_to_sync, sync_to_async
from django.core import signing
from django.db import transaction
from django.test import override_settings

from botdialogs import background
from botdialogs.background import performing
from botdialogs.engine import bots
from botdialogs.exceptions import (
    BackgroundNotHandled,
    BackgroundTimeout,
    BadBackgroundAction,
    BadLinkToken,
    LinkTokenExpired,
)
from botdialogs.models import BackgroundAction, DialogContext, DialogStack, TelegramChat
from botdialogs.testing import RecordingSession, message_update, recording_bots

CHAT = 4242
OTHER = 4343


class Probe(StatesGroup):
    main = State()
    other = State()


class Second(StatesGroup):
    child = State()


#: What handlers and middlewares of the probe bot saw (reset per test).
seen: dict[str, list[Any]] = {"bg_factory": [], "dialog_events": [], "returned_first": []}


async def probe_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    return {"n": dialog_manager.dialog_data.get("n", 0)}


async def on_start(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(Probe.main, mode=StartMode.RESET_STACK)


async def on_poke(message: Message, dialog_manager: DialogManager, **data: Any) -> None:
    seen["bg_factory"].append(data.get("dialog_bg_factory"))
    # Same chat, from inside its own update: must not wait (the chat is locked by us).
    manager = background.bg_manager("default", message.chat.id, message.chat.id)
    await manager.update({"n": 100})
    # The update runs after this handler: dialog_data is still as before here.
    seen["returned_first"].append(dialog_manager.dialog_data.get("n", 0))


async def record_dialog_events(
    handler: Callable[[Any, dict[str, Any]], Awaitable[Any]], event: Any, data: dict[str, Any]
) -> Any:
    seen["dialog_events"].append(event.action.value)
    return await handler(event, data)


def build_router() -> Router:
    """The probe bot (used through override_settings)."""
    router = Router(name="probe")
    router.message.register(on_start, CommandStart())
    router.message.register(on_poke, Command("poke"))
    router.include_router(
        Dialog(
            Window(Format("main n={n}"), state=Probe.main, getter=probe_getter),
            Window(Format("other n={n}"), state=Probe.other, getter=probe_getter),
        )
    )
    second = Dialog(Window(Format("child n={n}"), state=Second.child, getter=probe_getter))
    router.include_router(second)
    return router


PROBE_SETTINGS = {
    "BOTS": {"default": {"ROUTER": "tests.background.test_background.build_router"}},
    "BACKGROUND": "inline",
}


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    """Every Bot the registry builds records its calls here (no HTTP)."""
    for values in seen.values():
        values.clear()
    with recording_bots() as recording, override_settings(BOTDIALOGS=PROBE_SETTINGS):
        # As with aiogram_dialog: middlewares go on the Dispatcher's observer after setup.
        bots.get_dispatcher("default").observers[DIALOG_EVENT_NAME].middleware(record_dialog_events)
        yield recording


def feed(text: str, chat_id: int = CHAT) -> None:
    async def run() -> None:
        async with bots.bot_scope():
            bot = bots.get_bot("default")
            await bots.get_dispatcher("default").feed_raw_update(bot, message_update(chat_id, text))

    async_to_sync(run)()


def stack(chat_id: int = CHAT) -> DialogStack | None:
    return DialogStack.objects.filter(chat_id=chat_id, stack_id="").first()


def top_data(chat_id: int = CHAT) -> dict[str, Any]:
    row = stack(chat_id)
    assert row is not None and row.intents
    return DialogContext.objects.get(chat_id=chat_id, intent_id=row.intents[-1]).dialog_data


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- actions ------------------------------------------------------------------------------


def test_actions_are_plain_json_with_state_names(session: RecordingSession) -> None:
    action = background.build_action("start", "default", 1, 2, state=Probe.main, mode="reset_stack")
    assert action["state"] == "Probe:main"
    assert action["mode"] == "RESET_STACK"
    assert action["data"] is None and action["show_mode"] is None
    assert background.validate_action(action) == action


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        ("start", {"state": "Nope:gone"}, "no dialog with state"),
        ("start", {"state": "nocolon"}, "not a State"),
        ("start", {}, "needs a state"),
        ("update", {"data": [1]}, "must be a dict"),
        ("update", {"data": {"when": object()}}, "JSON"),
        ("update", {"data": {"price": float("nan")}}, "NaN and Infinity"),
        ("start", {"state": "Probe:main", "data": {"n": float("inf")}}, "NaN and Infinity"),
        ("done", {"result": {"n": -float("inf")}}, "NaN and Infinity"),
        ("update", {"data": {"name": "\x00"}}, "NUL character"),
        ("update", {"show_mode": "loud"}, "show_mode"),
        ("done", {"state": "Probe:main"}, "does not take state"),
        ("jump", {}, "not one of"),
    ],
)
def test_bad_actions_fail_in_the_caller(
    session: RecordingSession, kind: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadBackgroundAction, match=message):
        background.build_action(kind, "default", 1, 2, **extra)


#: The keys of each kind's dict: stored in BackgroundAction.payload and sent to Celery, so
#: a worker of another release reads what this one wrote.
TARGET_KEYS = ["v", "id", "action", "bot", "user_id", "chat_id", "stack_id", "thread_id"]
TARGET_KEYS += ["business_connection_id", "load"]


@pytest.mark.parametrize(
    ("kind", "parameters", "keys"),
    [
        ("start", {"state": "Probe:main"}, ["state", "data", "mode", "show_mode"]),
        ("switch_to", {"state": "Probe:other"}, ["state", "show_mode"]),
        ("update", {"data": {"n": 1}}, ["data", "show_mode"]),
        ("done", {"result": [1]}, ["result", "show_mode"]),
        ("node", {"router": "r", "node": "cart"}, ["router", "node", "data"]),
    ],
)
def test_action_dicts_keep_their_json_shape(
    session: RecordingSession, kind: str, parameters: dict[str, Any], keys: list[str]
) -> None:
    action = background.build_action(kind, "default", 1, 2, check_state=False, **parameters)
    assert list(action) == TARGET_KEYS + keys
    assert action["v"] == 1 and re.fullmatch(r"[0-9a-f]{32}", action["id"])
    assert json.loads(json.dumps(action)) == action == background.validate_action(action)


def test_a_bad_action_names_every_problem_at_once(session: RecordingSession) -> None:
    raw = {"action": "update", "bot": "default", "user_id": True, "chat_id": "2", "loud": 1}
    with pytest.raises(BadBackgroundAction) as caught:
        background.validate_action({**raw, "thread_id": 1.5, "show_mode": "loud", "quiet": 0})
    assert str(caught.value) == (
        "user_id must be an int, not True; chat_id must be an int, not '2'; "
        "thread_id must be an int, not 1.5; "
        "show_mode='loud' is not one of auto, edit, send, delete_and_send, no_update; "
        "update does not take loud, quiet"
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([("action", "update")], "An action is a dict, not list"),
        ({"v": 2, "action": "update"}, "Unknown action format version 2"),
        ({"action": "update", "id": "x" * 65}, "id must be a string of at most 64"),
        ({"action": "update", "load": "yes"}, "load must be true or false"),
        ({"action": "node", "node": "cart"}, "node needs router"),
        ({"action": "node", "router": "", "node": "cart"}, "router as a non-empty string"),
        ({"action": "node", "router": "r", "node": "cart", "data": [1]}, "node data must be"),
        ({"action": "start", "state": "Probe:main", "mode": "sideways"}, "mode='sideways'"),
    ],
)
def test_received_actions_are_checked_like_built_ones(raw: Any, message: str) -> None:
    if isinstance(raw, dict):
        raw = {"bot": "default", "user_id": 1, "chat_id": 2, **raw}
    with pytest.raises(BadBackgroundAction, match=re.escape(message)):
        background.validate_action(raw)


def test_unknown_bot_is_a_bad_action(session: RecordingSession) -> None:
    with pytest.raises(BadBackgroundAction, match="No bot named"):
        background.update("nobody", 1, 2, {"n": 1})


@pytest.mark.parametrize("bot", [None, ["default"], 7])
def test_a_bot_name_that_is_not_a_string_is_a_bad_action(bot: Any) -> None:
    raw = {"action": "update", "bot": bot, "user_id": 1, "chat_id": 2, "data": {}}
    with pytest.raises(BadBackgroundAction, match="No bot named"):
        background.validate_action(raw)


# -- sync API, inline delivery, transactions ------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_start_from_sync_code_changes_the_stack_and_sends(session: RecordingSession) -> None:
    feed("/start")
    session.calls.clear()
    background.start("default", CHAT, CHAT, "Second:child", data={"x": 1})
    row = stack()
    assert row is not None and row.state == "Second:child" and row.depth == 2
    assert session.texts() == ["child n=0"]


@pytest.mark.django_db(transaction=True)
def test_update_switch_and_done(session: RecordingSession) -> None:
    feed("/start")
    background.update("default", CHAT, CHAT, {"n": 5})
    assert top_data() == {"n": 5}
    background.switch_to("default", CHAT, CHAT, Probe.other)
    assert stack().state == "Probe:other"
    assert session.texts()[-2:] == ["main n=5", "other n=5"]
    background.start("default", CHAT, CHAT, Second.child)
    assert stack().depth == 2
    background.done("default", CHAT, CHAT, result={"ok": True})
    assert stack().depth == 1 and stack().state == "Probe:other"


@pytest.mark.django_db(transaction=True)
def test_action_waits_for_commit(session: RecordingSession) -> None:
    feed("/start")
    session.calls.clear()
    with transaction.atomic():
        background.update("default", CHAT, CHAT, {"n": 7})
        assert session.calls == []  # not before commit
    assert top_data() == {"n": 7}
    assert session.texts() == ["main n=7"]


@pytest.mark.django_db(transaction=True)
def test_rolled_back_transaction_sends_nothing(session: RecordingSession) -> None:
    feed("/start")
    session.calls.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        background.update("default", CHAT, CHAT, {"n": 7})
        raise RuntimeError("site code failed")
    assert session.calls == []
    assert top_data() == {}


@pytest.mark.django_db(transaction=True)
def test_sync_api_refuses_running_loop(session: RecordingSession) -> None:
    async def misuse() -> None:
        background.update("default", CHAT, CHAT, {"n": 1})

    from botdialogs.exceptions import NotInAsyncContext

    with pytest.raises(NotInAsyncContext, match="bg_manager"):
        asyncio.run(misuse())


# -- records: once only, stale states -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_recorded_action_runs_once(session: RecordingSession) -> None:
    feed("/start")
    session.calls.clear()
    action = background.build_action("update", "default", CHAT, CHAT, data={"n": 3})
    assert performing.perform_recorded(action) == performing.PERFORMED
    assert performing.perform_recorded(action) == performing.DUPLICATE
    assert session.texts() == ["main n=3"]
    record = BackgroundAction.objects.get(action_id=action["id"])
    assert record.status == "done" and record.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_state_gone_since_sending_is_rejected_not_retried(
    session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    feed("/start")
    action = background.build_action("start", "default", CHAT, CHAT, state=Probe.main)
    action["state"] = "Renamed:main"  # the worker runs code without this state
    assert performing.perform_recorded(action) == performing.REJECTED
    assert performing.perform_recorded(action) == performing.DUPLICATE
    assert BackgroundAction.objects.get(action_id=action["id"]).status == "rejected"
    assert "no dialog with state 'Renamed:main'" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_malformed_action_is_rejected(session: RecordingSession) -> None:
    assert performing.perform_recorded({"action": "update", "bot": "x"}) == performing.REJECTED


# -- async: the real BgManager ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_bg_manager_is_aiogram_dialogs_and_finishes_work(session: RecordingSession) -> None:
    await sync_to_async(feed)("/start")
    session.calls.clear()
    async with bots.bot_scope():
        manager = background.bg_manager("default", CHAT, CHAT)
        assert isinstance(manager, BgManager)
        await manager.update({"n": 2})
        # Awaited to completion: stored and sent when update() returns.
        assert (await sync_to_async(top_data)()) == {"n": 2}
        assert session.texts() == ["main n=2"]
        other = manager.bg(chat_id=CHAT, user_id=CHAT)
        assert isinstance(other, background.BackgroundManager)
        await other.switch_to(Probe.other)
    assert (await sync_to_async(stack)()).state == "Probe:other"
    assert seen["dialog_events"] == ["UPDATE", "SWITCH"]  # DIALOG_EVENT_NAME middlewares


@pytest.mark.django_db(transaction=True)
async def test_fg_gives_the_dialog_manager(session: RecordingSession) -> None:
    await sync_to_async(feed)("/start")
    async with bots.bot_scope():
        manager = background.bg_manager("default", CHAT, CHAT)
        async with manager.fg() as dialog_manager:
            assert dialog_manager.current_context().state == Probe.main
            dialog_manager.dialog_data["n"] = 9
            await dialog_manager.switch_to(Probe.other)
    assert (await sync_to_async(top_data)()) == {"n": 9}
    assert (await sync_to_async(stack)()).state == "Probe:other"


@pytest.mark.django_db(transaction=True)
async def test_fg_times_out_when_the_chat_is_busy(session: RecordingSession) -> None:
    await sync_to_async(feed)("/start")
    isolation = bots.get_event_isolation()
    key = StorageKey(bot_id=bots.bot_id("default"), chat_id=CHAT, user_id=CHAT)
    with override_settings(BOTDIALOGS={**PROBE_SETTINGS, "FG_TIMEOUT": 0.3}):
        isolation = bots.get_event_isolation()
        async with bots.bot_scope():
            manager = background.bg_manager("default", CHAT, CHAT)
            held = asyncio.Event()
            release = asyncio.Event()

            async def busy() -> None:
                async with isolation.lock(key):
                    held.set()
                    await release.wait()

            holder = asyncio.create_task(busy())
            await held.wait()
            with pytest.raises(BackgroundTimeout):
                async with manager.fg():
                    pytest.fail("entered a locked chat")
            # It gave up on its own: the chat was still locked when it did.
            assert not holder.done() and not release.is_set()
            release.set()
            await holder


@pytest.mark.django_db(transaction=True)
async def test_fg_not_handled_raises_instead_of_hanging(session: RecordingSession) -> None:
    def deny(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("no dialogs for you")

    await sync_to_async(feed)("/start")
    async with bots.bot_scope():
        manager = background.bg_manager("default", CHAT, CHAT)
        router = bots.get_dispatcher("default")

        # A middleware that stops aiogd updates before any dialog sees them.
        async def stop(handler: Any, event: Any, data: dict[str, Any]) -> Any:
            from aiogram.dispatcher.event.bases import UNHANDLED

            return UNHANDLED

        router.observers[DIALOG_EVENT_NAME].outer_middleware(stop)
        with pytest.raises(BackgroundNotHandled, match="reached no dialog"):
            async with manager.fg():
                pytest.fail("entered")


@pytest.mark.django_db(transaction=True)
async def test_inside_a_handler_it_does_not_wait(session: RecordingSession) -> None:
    await sync_to_async(feed)("/start")
    dispatcher = bots.get_dispatcher("default")
    async with bots.bot_scope():
        bot = bots.get_bot("default")
        await asyncio.wait_for(dispatcher.feed_raw_update(bot, message_update(CHAT, "/poke")), 5)
        # The handler got control back before the update ran (it would deadlock otherwise)...
        assert seen["returned_first"] == [0]
        # ... and the update runs once the handler's update is done (on this, living, loop).
        deadline = time.monotonic() + 5
        while (await sync_to_async(top_data)()) != {"n": 100}:
            assert time.monotonic() < deadline, "background update never ran"
            await asyncio.sleep(0.02)
    assert seen["bg_factory"] and seen["bg_factory"][0] is not None


# -- site users ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_update_for_site_user_reaches_each_linked_chat(
    session: RecordingSession, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("ann", password="x")
    feed("/start", CHAT)
    feed("/start", OTHER)
    assert TelegramChat.objects.filter(chat_id__in=[CHAT, OTHER]).count() == 2
    token = background.link_token(user)
    assert background.user_for_link_token(token) == user
    assert background.link_site_user("default", CHAT, user) == 1
    assert background.link_site_user("default", OTHER, user) == 1
    assert list(background.for_site_user(user).values_list("chat_id", flat=True)) == [CHAT, OTHER]
    session.calls.clear()
    ids = background.update_for_user(user, {"n": 4})
    assert len(ids) == 2
    assert top_data(CHAT) == {"n": 4} and top_data(OTHER) == {"n": 4}
    assert {
        int(c.chat_id) for c in session.calls if isinstance(c, SendMessage | EditMessageText)
    } == {
        CHAT,
        OTHER,
    }


@pytest.mark.django_db
def test_link_tokens_fit_telegram_and_expire(django_user_model: Any, monkeypatch: Any) -> None:
    user = django_user_model.objects.create_user("bo", password="x")
    token = background.link_token(user)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", token)  # a valid /start parameter
    assert background.user_for_link_token(token) == user

    tampered = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # another signature
        f"{user.pk + 1}{token[len(str(user.pk)) :]}",  # another user, same signature
        "",
        "1-2",
        "garbage-" * 10,
    ]
    for forged in tampered:
        with pytest.raises(BadLinkToken, match="not made by this site"):
            background.user_for_link_token(forged)

    # A token made a day and a second ago.
    now = signing.TimestampSigner.timestamp
    monkeypatch.setattr(
        signing.TimestampSigner,
        "timestamp",
        lambda self: signing.b62_encode(int(time.time()) - 86401),
    )
    old = background.link_token(user)
    monkeypatch.setattr(signing.TimestampSigner, "timestamp", now)
    with pytest.raises(LinkTokenExpired, match="expired"):
        background.user_for_link_token(old)
    with override_settings(BOTDIALOGS={**PROBE_SETTINGS, "LINK_TOKEN_MAX_AGE": 2 * 86400}):
        assert background.user_for_link_token(old) == user  # the setting decides
