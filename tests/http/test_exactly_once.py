"""Every update exactly once, in effect: its update_id commits with the state it changed.

Through the lean ASGI webhook route in this process (``botdialogs.asgi.WebhookRoute``) with
the counter bot and a recording Bot API session; PostgreSQL in the second CI pass, SQLite in
the first. The route itself: Django's view's answers, without a Django connection or a thread
per update.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.test import override_settings

from botdialogs.engine import bots
from botdialogs.http.asgi import WebhookRoute
from botdialogs.models import DialogContext, DialogStack, ProcessedUpdate
from botdialogs.storage.database import StorageDatabase
from botdialogs.testing import RecordingSession, callback_update, message_update, recording_bots

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "exactly-once-secret"
COUNTER = {
    "BOTS": {
        "default": {"ROUTER": "botdialogs.testing.bots.counter_router", "WEBHOOK_SECRET": SECRET}
    }
}
CHAT = 7100


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    """The Bot API session every Bot of this test uses (no HTTP)."""
    with override_settings(BOTDIALOGS=COUNTER), recording_bots() as recording:
        yield recording


@pytest.fixture
async def route(session: RecordingSession) -> AsyncIterator[WebhookRoute]:
    """The lean webhook route in front of Django's ASGI application."""
    yield WebhookRoute(get_asgi_application())
    await bots.get_storage().close()  # this loop's PostgreSQL connections


async def call(
    app: Any, path: str, body: bytes, headers: dict[str, str], method: str = "POST"
) -> tuple[int, Any]:
    """One HTTP request to an ASGI app; (status, JSON body or None)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    communicator = ApplicationCommunicator(app, scope)
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=30)
    content = b""
    while True:
        message = await communicator.receive_output(timeout=30)
        content += message.get("body", b"")
        if not message.get("more_body", False):
            break
    await communicator.wait(timeout=5)
    try:
        return start["status"], json.loads(content)
    except ValueError:
        return start["status"], None


async def deliver(route: WebhookRoute, update: dict[str, Any]) -> tuple[int, Any]:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    return await call(route, "/bots/default/webhook/", json.dumps(update).encode(), headers)


@sync_to_async
def count() -> int:
    context = DialogContext.objects.filter(chat_id=CHAT).first()
    return context.dialog_data.get("count", 0) if context else -1


@sync_to_async
def press_of(widget: str) -> dict[str, Any]:
    stack = DialogStack.objects.get(chat_id=CHAT, stack_id="")
    data = f"{stack.intents[-1]}\x1d{widget}"
    return callback_update(CHAT, data, message_id=stack.last_message_id)


@sync_to_async
def processed(update: dict[str, Any]) -> int:
    return ProcessedUpdate.objects.filter(update_id=update["update_id"]).count()


async def started(route: WebhookRoute) -> None:
    assert (await deliver(route, message_update(CHAT, "/start")))[0] == 200
    assert await count() == 0


async def test_the_route_answers_like_the_view(route: WebhookRoute) -> None:
    update = json.dumps(message_update(CHAT, "/start")).encode()
    good = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    assert await call(route, "/bots/nobody/webhook/", update, good) == (
        404,
        {"ok": False, "description": "Unknown bot"},
    )
    assert (await call(route, "/bots/default/webhook/", update, {}))[0] == 403
    assert (await call(route, "/bots/default/webhook/", b"{", good))[0] == 400
    big = b" " * 2_000_000
    assert (await call(route, "/bots/default/webhook/", big, good))[0] == 413
    # Other methods and paths are Django's: the view's 405, the admin's redirect.
    assert (await call(route, "/bots/default/webhook/", b"", good, method="GET"))[0] == 405
    assert (await call(route, "/admin/", b"", {}, method="GET"))[0] == 302
    assert await sync_to_async(ProcessedUpdate.objects.count)() == 0


async def test_a_press_counts_once_however_often_it_is_delivered(route: WebhookRoute) -> None:
    await started(route)
    press = await press_of("inc")
    answers = await asyncio.gather(*(deliver(route, press) for _ in range(5)))
    assert [status for status, _ in answers] == [200] * 5
    assert await count() == 1
    assert await deliver(route, press) == (200, {})
    assert await count() == 1
    assert await processed(press) == 1


async def test_a_database_failure_answers_503_and_the_redelivery_counts(
    route: WebhookRoute,
) -> None:
    await started(route)
    press = await press_of("inc")
    database: StorageDatabase = bots.get_storage().database  # type: ignore[attr-defined]
    commit = database.commit

    async def failing_commit(*args: Any, **kwargs: Any) -> None:
        await database.rollback(args[0])
        raise OperationalError("server closed the connection unexpectedly")

    with mock.patch.object(database, "commit", failing_commit):
        assert (await deliver(route, press))[0] == 503
    assert (await count(), await processed(press)) == (0, 0)

    assert database.commit == commit
    assert await deliver(route, press) == (200, {})
    assert (await count(), await processed(press)) == (1, 1)


async def test_a_handler_bug_is_answered_200_and_not_handled_again(
    route: WebhookRoute, session: RecordingSession
) -> None:
    await started(route)
    boom = await press_of("boom")
    calls = len(session.calls)
    assert await deliver(route, boom) == (200, {})
    assert await processed(boom) == 1  # done, badly: Telegram must not retry it forever
    assert await count() == 0  # none of the handler's changes were stored
    handled = len(session.calls)
    assert handled > calls  # the failing handler ran (and its dialog answered the press)

    assert await deliver(route, boom) == (200, {})
    assert len(session.calls) == handled


async def test_updates_cost_no_connection_and_no_thread(route: WebhookRoute) -> None:
    await started(route)
    await deliver(route, await press_of("inc"))  # connections and threads warmed up
    connects: list[Any] = []
    threads: list[Any] = []
    original_connect = BaseDatabaseWrapper.connect
    original_start = threading.Thread.start

    def connect(self: Any) -> None:
        connects.append(self.alias)
        original_connect(self)

    def start(self: threading.Thread) -> None:
        threads.append(self.name)
        original_start(self)

    with (
        mock.patch.object(BaseDatabaseWrapper, "connect", connect),
        mock.patch.object(threading.Thread, "start", start),
    ):
        for _ in range(10):
            assert (await deliver(route, await press_of("inc")))[0] == 200
    assert await count() == 11
    assert (connects, threads) == ([], [])


async def test_queued_mode_answers_503_when_the_broker_refuses(route: WebhookRoute) -> None:
    from kombu.exceptions import OperationalError as BrokerError

    from botdialogs.tasks import process_update

    queued = {"BOTS": {"default": {**COUNTER["BOTS"]["default"], "MODE": "queued"}}}
    update = message_update(CHAT, "/start")
    with (
        override_settings(BOTDIALOGS=queued),
        mock.patch.object(process_update, "delay", side_effect=BrokerError("broker down")),
    ):
        assert (await deliver(route, update))[0] == 503
    # The view takes no update id in queued mode: the worker does, with the state.
    assert await processed(update) == 0
