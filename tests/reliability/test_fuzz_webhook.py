"""Hypothesis fuzzes the webhook's body and headers: never a 5xx, and a 4xx stores nothing.

Deliveries go through Django's async test client to ``/bots/default/webhook/`` (the whole
view, the unit of work and a small dialog bot whose Bot API calls are recorded in memory), on
whatever database this run uses. Deterministic (``derandomize``), about 20 seconds.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.text import Format
from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import connections
from django.test import AsyncClient, override_settings
from django.test.client import FakePayload
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from botdialogs.engine import bots
from botdialogs.testing import RecordingSession, recording_bots

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # An update with no event in it is aiogram's warning, and our 200: not this test's matter.
    pytest.mark.filterwarnings("ignore:Detected unknown update type:RuntimeWarning"),
]

URL = "/bots/default/webhook/"
SECRET = "fuzz-secret_0123456789"
MAX_BODY = 16 * 1024
FUZZ_SETTINGS = {
    "BOTS": {"default": {"ROUTER": f"{__name__}.build_router", "WEBHOOK_SECRET": SECRET}},
    "WEBHOOK_MAX_BODY_BYTES": MAX_BODY,
}


class Echo(StatesGroup):
    main = State()


async def on_any_message(message: Message, dialog_manager: DialogManager) -> None:
    # Whatever the user wrote goes into stored dialog data: hostile text reaches the tables.
    await dialog_manager.start(
        Echo.main,
        data={"text": message.text, "name": message.chat.first_name},
        mode=StartMode.RESET_STACK,
    )


def build_router() -> Router:
    """A dialog bot that stores what each message says."""
    router = Router(name="fuzz")
    router.message.register(on_any_message, CommandStart())
    router.message.register(on_any_message)
    router.include_router(Dialog(Window(Format("{start_data[text]}"), state=Echo.main)))
    return router


# -- strategies ------------------------------------------------------------------------------
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: beyond 64 bits too
    | st.floats()  # NaN and Infinity included; json writes them as non-JSON tokens
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


@st.composite
def update_like(draw: st.DrawFn) -> dict[str, Any]:
    """A Telegram message update with fields drawn from wide (hostile) ranges."""
    wide = st.integers(min_value=-(2**70), max_value=2**70)
    chat_id = draw(wide | st.integers(1, 10**6) | st.integers(1, 10**6))
    update: dict[str, Any] = {
        "update_id": draw(wide | st.integers(0, 10**9) | st.integers(0, 10**9)),
        "message": {
            "message_id": draw(st.integers(min_value=-(2**40), max_value=2**70)),
            "date": draw(st.integers(min_value=-(2**40), max_value=2**40) | st.floats()),
            "chat": {
                "id": chat_id,
                "type": draw(st.sampled_from(["private", "group", "channel", "??"])),
                "first_name": draw(st.text(max_size=300)),
            },
            "from": {"id": chat_id, "is_bot": draw(st.booleans()), "first_name": "F"},
            "text": draw(st.text(max_size=100)),
        },
    }
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    target = draw(st.sampled_from([update, update["message"], update["message"]["chat"]]))
    target.update(extra)
    return update


def nested(depth: int) -> bytes:
    return b'{"update_id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # allow_nan: NaN and Infinity go out as bare tokens


bodies = st.one_of(
    json_values.map(dumps),
    update_like().map(dumps),
    update_like().map(dumps),
    st.binary(max_size=300),
    st.integers(1, 100_000).map(nested),
    st.integers(0, 2 * MAX_BODY).map(lambda size: b'{"update_id": 1, "x": "' + b"x" * size + b'"}'),
)
# Mostly the right secret, so that bodies get past the 403 and reach the parser.
wrong_secrets = st.none() | st.sampled_from(["", "wrong", SECRET + "x", SECRET[:-1]]) | st.text()
secrets_sent = st.one_of(st.just(SECRET), st.just(SECRET), st.just(SECRET), wrong_secrets)
content_lengths = st.one_of(
    st.just("actual"),
    st.none(),
    st.integers(-(2**40), 2**40).map(str),
    st.text(max_size=12),
)


# -- the test --------------------------------------------------------------------------------
@pytest.fixture
async def fuzz_bot() -> AsyncIterator[RecordingSession]:
    """The fuzz bot's settings; its Bot records API calls; connections closed afterwards."""
    with recording_bots() as session, override_settings(BOTDIALOGS=FUZZ_SETTINGS):
        yield session
        await bots.get_event_isolation().close()
        await bots.get_storage().close()
    await sync_to_async(connections.close_all)()


def stored_rows() -> dict[str, int]:
    """Rows of every botdialogs model."""
    return {
        model.__name__: model.objects.count()
        for model in apps.get_app_config("botdialogs").get_models()
    }


async def post(body: bytes, secret: str | None, content_length: str | None) -> int:
    """POST raw bytes with exactly these headers (the test client would add its own length)."""
    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    if secret is not None:
        headers.append((b"x-telegram-bot-api-secret-token", secret.encode()))
    if content_length is not None:
        value = str(len(body)) if content_length == "actual" else content_length
        headers.append((b"content-length", value.encode()))
    scope = {
        "method": "POST",
        "path": URL,
        "server": ("127.0.0.1", "80"),
        "scheme": "https",
        "headers": headers,
        "query_string": "",
        "_body_file": FakePayload(body),
    }
    client = AsyncClient(raise_request_exception=False)
    return (await client.request(**scope)).status_code


@settings(
    max_examples=1500,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.slow  # hundreds of generated deliveries
@given(body=bodies, secret=secrets_sent, content_length=content_lengths)
async def test_no_delivery_gets_a_5xx_and_a_4xx_stores_nothing(
    fuzz_bot: RecordingSession, body: bytes, secret: str | None, content_length: str | None
) -> None:
    before = await sync_to_async(stored_rows)()

    status = await post(body, secret, content_length)
    event(f"HTTP {status}")

    assert status < 500, (status, body[:200], secret, content_length)
    if status >= 400:
        assert await sync_to_async(stored_rows)() == before, (status, body[:200])
    if secret != SECRET:
        assert status == 403
