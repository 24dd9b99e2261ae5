"""The update-type table (docs/topics/updates.md renders the same data) through the real webhook.

A uvicorn server runs the demo site with two more bots: ``every_type`` has a handler for
every routable type, ``no_handlers`` has none. Each row's sample is delivered to both, then
delivered again.
"""

from __future__ import annotations

import itertools
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram.types import Update

from botdialogs.engine.bots import local_bot_id
from botdialogs.http.update_types import RELIED_ON, UNKNOWN_TYPE, UPDATE_TYPES, Outcome, Scope
from botdialogs.models import ProcessedUpdate, TelegramChat
from botdialogs.testing import AsgiServer
from botdialogs.testing.databases import wait_for_quiet_database
from tests.http.update_samples import member_change, routed_text, sample
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db(transaction=True)
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET, "Content-Type": "application/json"}
FIRST_USER = 61_000
_update_ids = itertools.count(9_100_000)


@pytest.fixture(scope="module")
def update_types_server_process(test_db_env: dict[str, str]) -> Iterator[AsgiServer]:
    env = {**test_db_env, "BOT_MODE": "inline"}
    env["DJANGO_SETTINGS_MODULE"] = "tests.sites.update_types"
    with AsgiServer(APP, env=env) as server:
        yield server


@pytest.fixture
def site(transactional_db: None, update_types_server_process: AsgiServer) -> Iterator[AsgiServer]:
    yield update_types_server_process
    wait_for_quiet_database()


def deliver(server: AsgiServer, bot: str, update: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{server.url}/bots/{bot}/webhook/", data=json.dumps(update).encode(), headers=HEADERS
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def chat_row(bot: str, user_id: int) -> TelegramChat | None:
    return TelegramChat.objects.filter(bot_id=local_bot_id(bot), user_id=user_id).first()


def test_the_table_has_a_row_for_every_update_field_aiogram_knows() -> None:
    kinds = [row.kind for row in UPDATE_TYPES]
    assert len(kinds) == len(set(kinds))
    fields = set(Update.model_fields) - {"update_id"}
    assert set(kinds) == fields | {UNKNOWN_TYPE}
    assert RELIED_ON == ("my_chat_member",)


@pytest.mark.parametrize("bot", ["every_type", "no_handlers"])
@pytest.mark.parametrize("row", UPDATE_TYPES, ids=[row.kind for row in UPDATE_TYPES])
def test_every_update_type_has_its_documented_outcome(site: AsgiServer, row: Any, bot: str) -> None:
    user_id = FIRST_USER + UPDATE_TYPES.index(row)
    update = sample(row.kind, next(_update_ids), user_id)

    status, body = deliver(site, bot, update)
    assert status == 200
    routed = bot == "every_type" and row.outcome is not Outcome.RECORDED
    if routed:
        expected = routed_text(row.kind, with_state=row.scope is not Scope.NONE)
        assert (body["method"], body["text"]) == ("sendMessage", expected)
    else:
        assert body == {}
    recorded = ProcessedUpdate.objects.filter(bot_name=bot, update_id=update["update_id"])
    assert recorded.count() == 1

    # The chat scope notes the chat and its user; no other scope writes a chat row.
    chat = chat_row(bot, user_id)
    assert (chat is not None) == (row.scope is Scope.CHAT)
    if row.kind == "my_chat_member":
        assert chat is not None and chat.is_blocked  # the sample is a block
    elif chat is not None:
        assert not chat.is_blocked

    # Redelivered: acknowledged, nothing routed again, still recorded once.
    assert deliver(site, bot, update) == (200, {})
    assert recorded.count() == 1


@pytest.mark.parametrize("bot", ["every_type", "no_handlers"])
def test_a_block_and_an_unblock_flip_is_blocked_for_a_user_never_seen_before(
    site: AsgiServer, bot: str
) -> None:
    user_id = FIRST_USER + 500
    kinds = [("member", "kicked", True), ("kicked", "member", False), ("member", "kicked", True)]
    for old, new, blocked in kinds:
        change = member_change(user_id, old, new)
        update = {"update_id": next(_update_ids), "my_chat_member": change}
        assert deliver(site, bot, update)[0] == 200
        chat = chat_row(bot, user_id)
        assert chat is not None and chat.is_blocked is blocked
    # Any other update from the user means they can be written to again.
    assert deliver(site, bot, sample("message", next(_update_ids), user_id))[0] == 200
    chat = chat_row(bot, user_id)
    assert chat is not None and chat.is_blocked is False
