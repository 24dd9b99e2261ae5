"""The live monitor: events published once committed, free while nobody watches, shown to
staff only over a websocket that survives hostile clients."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import websockets
from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, Update
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client, override_settings

from botdialogs.consumers import MonitorConsumer
from botdialogs.engine import bots
from botdialogs.http import webhook
from botdialogs.monitor import presence, publish, publish_action, publish_update, sending
from botdialogs.testing import AsgiServer, LocalTelegram, message_update
from tests.support.websockets import WebsocketClient

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fresh_channel_layers"),
]

SOCKET_PATH = "/ws/botdialogs/monitor/"


@pytest.fixture(autouse=True)
def no_watchers() -> Iterator[None]:
    """Each test starts with nobody watching in this process and fresh presence answers."""
    presence.reset()
    yield
    presence._presence.local = 0
    presence.reset()


def session_cookie(username: str, *, staff: bool) -> str:
    """A signed-in user's session cookie (stored in the test database the servers share)."""
    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=staff)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def communicator(cookie: str | None = None, query: bytes = b"") -> WebsocketClient:
    """The site's own ASGI application (session auth, origin check) on a monitor socket."""
    from project.asgi import application

    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketClient(application, SOCKET_PATH, headers, query_string=query)


# -- nobody watching ----------------------------------------------------------------------------
def test_publishing_with_nobody_watching_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    layer = get_channel_layer()
    sends: list[Any] = []
    submitted: list[Any] = []
    counts: list[float] = []
    count_remote = presence._count_remote

    async def group_send(*args: Any) -> None:
        sends.append(args)

    def counting(now: float) -> bool:
        counts.append(now)
        return count_remote(now)

    monkeypatch.setattr(layer, "group_send", group_send)
    monkeypatch.setattr(sending, "submit", submitted.append)
    monkeypatch.setattr(presence, "_count_remote", counting)
    update = Update.model_validate(message_update(7, "hello"))
    started = time.monotonic()
    for number in range(20_000):
        publish("dialog.switched", bot=1, user_id=number, chat_id=number, state="A:b")
        publish_update("default", update)
        publish_action({"bot": "default", "user_id": 1, "chat_id": 1, "action": "start"})
    elapsed = time.monotonic() - started
    assert sends == [] and submitted == []
    # Other processes' watchers are counted at most once a second, never per event.
    assert 1 <= len(counts) <= elapsed / presence.CHECK_INTERVAL + 1


def test_an_event_from_sync_code_waits_for_the_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    submitted: list[dict[str, Any]] = []
    monkeypatch.setattr(sending, "submit", submitted.append)
    presence._presence.local = 1  # a watcher in this process
    with pytest.raises(RuntimeError), transaction.atomic():
        publish("data.changed", bot="default", user_id=1, chat_id=1, keys=["a"])
        raise RuntimeError("rolled back")
    assert submitted == []
    with transaction.atomic():
        publish("data.changed", bot="default", user_id=2, chat_id=2, keys=["b" * 500])
        assert submitted == []  # not before the commit
    [event] = submitted
    assert (event["kind"], event["user_id"], event["bot"]) == ("data.changed", 2, "default")
    assert len(event["keys"][0]) == 200  # long texts are cut


# -- the websocket: staff only, hostile clients closed ----------------------------------------
async def test_the_monitor_socket_is_for_staff_only(thread_connections_closed: None) -> None:
    clerk = await sync_to_async(session_cookie)("clerk", staff=False)
    staff = await sync_to_async(session_cookie)("boss", staff=True)
    for cookie in (None, clerk):
        socket = communicator(cookie)
        connected, code = await socket.connect()
        assert (connected, code) == (False, 4403)
    assert presence._presence.local == 0  # a refused socket is no watcher
    socket = communicator(staff)
    connected, _ = await socket.connect()
    assert connected
    assert presence.watching()
    await socket.disconnect()
    assert presence._presence.local == 0


async def test_a_socket_is_closed_when_its_user_is_no_longer_staff(
    thread_connections_closed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence, "HEARTBEAT", 0.05)
    staff = await sync_to_async(session_cookie)("boss", staff=True)
    socket = communicator(staff)
    assert (await socket.connect())[0]
    await get_user_model().objects.filter(username="boss").aupdate(is_staff=False)
    assert await socket.closed_with() == 4403
    assert presence._presence.local == 0


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ({"bytes_data": b"\x00\x01"}, 4400),
        ({"text_data": "<script>not json"}, 4400),
        ({"text_data": "[1, 2]"}, 4400),
        ({"text_data": json.dumps({"bot": "default", "drop": "tables"})}, 4400),
        ({"text_data": json.dumps({"user": "12; DROP"})}, 4400),
        ({"text_data": json.dumps({"bot": "x" * 2000})}, 4400),
    ],
)
async def test_garbage_from_the_client_closes_the_socket(
    thread_connections_closed: None, message: dict[str, Any], code: int
) -> None:
    staff = await sync_to_async(session_cookie)("boss", staff=True)
    socket = communicator(staff)
    assert (await socket.connect())[0]
    await socket.send_to(**message)
    assert await socket.closed_with() == code
    # The server is fine: the next client connects and sets a filter.
    again = communicator(staff)
    assert (await again.connect())[0]
    await again.send_to(text_data=json.dumps({"bot": "default", "user": "42"}))
    assert json.loads(await again.receive_from()) == {
        "type": "filters",
        "bot": "default",
        "user": 42,
    }
    await again.disconnect()


async def test_filters_in_the_url_apply_from_the_start_and_are_checked(
    thread_connections_closed: None,
) -> None:
    staff = await sync_to_async(session_cookie)("boss", staff=True)
    refused = communicator(staff, query=b"user=12;DROP")
    assert await refused.connect() == (False, 4400)
    socket = communicator(staff, query=b"bot=default&user=42")
    assert (await socket.connect())[0]
    for user_id in (41, 42):  # as the channel layer hands them over, before any message
        event = {"kind": "update", "bot": "default", "user_id": user_id, "chat_id": user_id}
        await socket.send_input({"type": "monitor.event", "event": event})
    shown = json.loads(await socket.receive_from())["event"]
    assert (shown["user_id"], shown["kind"]) == (42, "update")  # 41's was filtered out
    await socket.disconnect()


async def test_a_flood_of_messages_closes_the_socket(thread_connections_closed: None) -> None:
    staff = await sync_to_async(session_cookie)("boss", staff=True)
    socket = communicator(staff)
    assert (await socket.connect())[0]
    answers = 0
    for _ in range(200):
        await socket.send_to(text_data=json.dumps({"user": ""}))
    while (output := await socket.receive_output(timeout=5))["type"] != "websocket.close":
        answers += 1
    assert output["code"] == 4429
    assert answers == MonitorConsumer.MAX_MESSAGES  # the messages before the flood were answered
    await socket.disconnect()


# -- events of real work ---------------------------------------------------------------------
def probe_router() -> Router:
    """A plain FSM bot: "set" stores a state and data, "flaky" fails after storing them
    (a passing failure: rolled back), "bug" fails likewise with a bug."""
    router = Router(name="probe")

    @router.message(F.text.in_({"set", "flaky", "bug"}))
    async def store(message: Message, state: FSMContext) -> None:
        await state.set_state("Probe:stored")
        await state.update_data(colour="green", size=3)
        if message.text == "flaky":
            raise ConnectionError("database went away")
        if message.text == "bug":
            raise ZeroDivisionError("handler bug")

    return router


@pytest.fixture
async def probe_bot(thread_connections_closed: None) -> AsyncIterator[str]:
    with override_settings(BOTDIALOGS={"BOTS": {"probe": {"ROUTER": f"{__name__}.probe_router"}}}):
        yield "probe"
        await bots.get_event_isolation().close()


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Events as they are handed to the channel layer, with a watcher in this process."""
    events: list[dict[str, Any]] = []
    monkeypatch.setattr(sending, "submit", events.append)
    presence._presence.local = 1
    return events


async def test_a_rolled_back_update_publishes_nothing(
    probe_bot: str, recorded: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConnectionError):
        await webhook.process_update(probe_bot, message_update(501, "flaky"))
    assert recorded == []
    # The same work committed is published: the update, its state and the data's keys.
    await webhook.process_update(probe_bot, message_update(501, "set"))
    kinds = {event["kind"]: event for event in recorded}
    assert kinds["update"]["text"] == "set"
    assert kinds["state.changed"]["state"] == "Probe:stored"
    assert kinds["data.changed"]["keys"] == ["colour", "size"]
    assert {event["user_id"] for event in recorded} == {501}


async def test_a_handler_bug_publishes_its_error_and_no_state(
    probe_bot: str, recorded: list[dict[str, Any]]
) -> None:
    await webhook.process_update(probe_bot, message_update(502, "bug"))
    assert sorted(event["kind"] for event in recorded) == ["error", "update"]
    [error] = [event for event in recorded if event["kind"] == "error"]
    assert error["error"] == "ZeroDivisionError: handler bug"
    assert (error["bot"], error["user_id"], error["chat_id"]) == ("probe", 502, 502)


async def receive_events(
    socket: Any, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0
) -> list[dict[str, Any]]:
    """Events from a websocket (``websockets`` client) until ``until(events)`` holds."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not until(events):
            message = json.loads(await socket.recv())
            if message["type"] == "event":
                events.append(message["event"])
    return events


def has(kind: str, **fields: Any) -> Callable[[list[dict[str, Any]]], bool]:
    def check(events: list[dict[str, Any]]) -> bool:
        return any(
            event["kind"] == kind and all(event.get(k) == v for k, v in fields.items())
            for event in events
        )

    return check


async def watch(server: AsgiServer, cookie: str, user: int) -> Any:
    """A monitor websocket on ``server`` filtered to ``user``, once the filter is set."""
    socket = await websockets.connect(
        server.url.replace("http", "ws") + SOCKET_PATH,
        origin=server.url,  # type: ignore[arg-type]
        additional_headers={"Cookie": cookie},
    )
    await socket.send(json.dumps({"user": user}))
    assert json.loads(await socket.recv())["type"] == "filters"
    return socket


async def test_a_real_update_shows_state_names_and_data_keys(
    inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    cookie = await sync_to_async(session_cookie)("boss", staff=True)
    socket = await watch(inline_server, cookie, user=6101)
    chat = LocalTelegram(inline_server.url).chat(6101, first_name="Mo")
    try:
        await asyncio.to_thread(chat.send, "/start")
        events = await receive_events(socket, has("dialog.started", state="MainMenu:menu"))
        assert has("update", update="message", text="/start", user_id=6101)(events)
        await asyncio.to_thread(chat.press, "Order food")
        await receive_events(socket, has("dialog.started", state="FoodOrder:hungry"))
        await asyncio.to_thread(chat.press, "Yes")
        events = await receive_events(
            socket, has("dialog.switched", previous="FoodOrder:hungry", state="FoodOrder:cart")
        )
        assert has("update", update="callback")(events)
        await asyncio.to_thread(chat.press, "+ Pizza")
        events = await receive_events(socket, has("data.changed", state="FoodOrder:cart"))
        [change] = [event for event in events if event["kind"] == "data.changed"]
        assert "cart" in change["keys"]
        assert change["bot"] == "default" and change["stack_url"].endswith(
            f"?q=6101&bot={bots.bot_id('default')}"
        )
    finally:
        await socket.close()


async def test_events_of_a_celery_worker_reach_a_watcher_of_the_web_process(
    redis_queued_server: AsgiServer, celery_worker: None, thread_connections_closed: None
) -> None:
    cookie = await sync_to_async(session_cookie)("boss", staff=True)
    socket = await watch(redis_queued_server, cookie, user=6202)
    chat = LocalTelegram(redis_queued_server.url).chat(6202, first_name="Di")
    try:
        await asyncio.to_thread(chat.send, "/start")  # the worker handles it
        events = await receive_events(
            socket,
            lambda got: (
                has("dialog.started", state="MainMenu:menu")(got)
                and has("update", text="/start")(got)
            ),
            timeout=60,
        )
        assert {event["user_id"] for event in events} == {6202}
    finally:
        await socket.close()


# -- background actions and timers (in this process, Bot API answered from memory) ----------
from tests.background.test_background import CHAT, Probe, feed  # noqa: E402
from tests.timers.test_timers import fire_due  # noqa: E402
from tests.timers.test_timers import session as timers_bot  # noqa: E402, F401 - a fixture


@pytest.mark.usefixtures("timers_bot")
def test_background_actions_and_timers_show_with_their_state_and_id(
    recorded: list[dict[str, Any]],
) -> None:
    from botdialogs import background

    feed("/start")
    assert has("dialog.started", state="Probe:main", user_id=CHAT)(recorded)
    recorded.clear()
    background.switch_to("default", CHAT, CHAT, Probe.other)
    assert has("dialog.switched", previous="Probe:main", state="Probe:other")(recorded)
    [action] = [event for event in recorded if event["kind"] == "action"]
    assert (action["action"], action["state"], action["bot"]) == (
        "switch_to",
        "Probe:other",
        "default",
    )
    assert action["action_id"]
    recorded.clear()
    feed("/remind")  # schedules a timer that updates dialog_data["n"]
    recorded.clear()
    assert fire_due().outcomes == {"fired": 1}
    [timer] = [event for event in recorded if event["kind"] == "timer"]
    assert (timer["action"], timer["user_id"], timer["chat_id"]) == ("update", CHAT, CHAT)
    assert timer["timer_id"] == timer["action_id"]
    assert has("data.changed", keys=["n"], state="Probe:other")(recorded)
