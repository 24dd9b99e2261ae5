"""Nodes in one process: steps on the real unit of work (SQLite, or PostgreSQL when
DATABASE_URL is set), each recovery path, the one construction path, and the admin."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from django.test import Client
from django.urls import reverse
from pydantic import BaseModel

from botdialogs.exceptions import StorageUnavailable
from botdialogs.models import NodeState
from botdialogs.nodes import Node, NodeRegistry, NodeRouter, UnknownNode
from botdialogs.storage import DjangoStorage

pytestmark = pytest.mark.django_db(transaction=True)

BOT_ID = 4242


class FakeBot:
    """The one Bot API method nodes call here, recorded."""

    id = BOT_ID

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def send_message(self, chat_id: int, text: str, **kwargs: Any) -> None:
        self.sent.append((chat_id, text))


class Basket(BaseModel):
    items: list[str] = []


registry = NodeRegistry()


@registry.register("start")
class Start(Node[None, str, int, Any]):
    async def on_enter(self, user_id: int, ctx: None) -> None:
        await BOT.send_message(user_id, "welcome")

    async def on_event(self, user_id: int, event: str, ctx: None) -> Any:
        return Shopping(Basket(items=[event])) if event != "stay" else self


@registry.register("shopping")
class Shopping(Node[None, str, int, Basket]):
    def __init__(self, data: Basket | None = None) -> None:
        super().__init__(data)
        # Set up by the constructor: must be there after a reload too.
        self.greeting = f"{len(self.data.items)} item(s)"

    async def on_enter(self, user_id: int, ctx: None) -> None:
        await BOT.send_message(user_id, self.greeting)

    async def on_event(self, user_id: int, event: str, ctx: None) -> Any:
        if event == "boom":
            raise RuntimeError("a handler bug")
        if event == "same":
            return self
        return Shopping(Basket(items=[*self.data.items, event]))


BOT = FakeBot()
nodes: NodeRouter[None, str, int] = NodeRouter(
    registry, start=lambda user_id: Start(), user_id_of=lambda event: 0, name="test-nodes"
)


@pytest.fixture
async def storage(thread_connections_closed: None) -> AsyncIterator[DjangoStorage]:
    """A DjangoStorage whose connections are closed after the test."""
    storage = DjangoStorage()
    yield storage
    await storage.close()


@pytest.fixture(autouse=True)
def _fresh_bot() -> None:
    BOT.sent.clear()


def key(user_id: int) -> StorageKey:
    return StorageKey(bot_id=BOT_ID, chat_id=user_id, user_id=user_id)


async def step(storage: DjangoStorage, user_id: int, event: str) -> None:
    async with storage.unit_of_work(key(user_id)) as unit:
        await nodes.step(unit, key(user_id), BOT, user_id, event)  # type: ignore[arg-type]


async def stored(user_id: int) -> NodeState | None:
    return await NodeState.objects.filter(user_id=user_id).afirst()


async def test_first_event_of_a_new_user_is_handled_by_the_start_node(
    storage: DjangoStorage,
) -> None:
    await step(storage, 1, "tea")
    row = await stored(1)
    assert row is not None and (row.node_key, row.data) == ("shopping", {"items": ["tea"]})
    assert (row.router, row.schema_version, row.bot_id) == ("test-nodes", 1, BOT_ID)
    assert BOT.sent == [(1, "welcome"), (1, "1 item(s)")]


async def test_a_reloaded_node_is_built_by_its_constructor(storage: DjangoStorage) -> None:
    await step(storage, 2, "tea")
    await step(storage, 2, "soup")
    await step(storage, 2, "same")  # stays: no on_enter
    row = await stored(2)
    assert row is not None and row.data == {"items": ["tea", "soup"]}
    restored = Shopping.restore(row.data)
    assert restored.greeting == "2 item(s)"
    assert BOT.sent[-1] == (2, "2 item(s)")


async def test_unknown_node_key_goes_back_to_the_start_with_a_message_and_a_log_line(
    storage: DjangoStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await step(storage, 3, "tea")
    await NodeState.objects.filter(user_id=3).aupdate(node_key="renamed")
    with caplog.at_level(logging.WARNING, logger="botdialogs.nodes"):
        await step(storage, 3, "soup")
    row = await stored(3)
    assert row is not None and (row.node_key, row.data) == ("start", {})
    assert BOT.sent[-2:] == [(3, nodes.recovery_text), (3, "welcome")]
    assert "unknown node" in caplog.text and "'renamed'" in caplog.text
    await step(storage, 3, "soup")  # and the user goes on from the start node
    row = await stored(3)
    assert row is not None and row.data == {"items": ["soup"]}


async def test_data_that_no_longer_validates_goes_back_to_the_start(
    storage: DjangoStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await step(storage, 4, "tea")
    await NodeState.objects.filter(user_id=4).aupdate(data={"items": "not a list"})
    with caplog.at_level(logging.WARNING, logger="botdialogs.nodes"):
        await step(storage, 4, "soup")
    row = await stored(4)
    assert row is not None and row.node_key == "start"
    assert BOT.sent[-2:] == [(4, nodes.recovery_text), (4, "welcome")]
    assert "invalid data" in caplog.text


async def test_data_saved_under_another_schema_version_goes_back_to_the_start(
    storage: DjangoStorage, caplog: pytest.LogCaptureFixture
) -> None:
    await step(storage, 12, "tea")
    await NodeState.objects.filter(user_id=12).aupdate(schema_version=2)
    with caplog.at_level(logging.WARNING, logger="botdialogs.nodes"):
        await step(storage, 12, "soup")
    row = await stored(12)
    assert row is not None and (row.node_key, row.schema_version) == ("start", 1)
    assert BOT.sent[-2:] == [(12, nodes.recovery_text), (12, "welcome")]
    assert "stale schema" in caplog.text and "schema version 2" in caplog.text


async def test_a_failing_step_keeps_the_user_where_they_were(storage: DjangoStorage) -> None:
    await step(storage, 5, "tea")
    with pytest.raises(RuntimeError, match="a handler bug"):
        await step(storage, 5, "boom")
    row = await stored(5)
    assert row is not None and row.data == {"items": ["tea"]}


async def test_a_failing_save_keeps_the_old_node_and_a_retry_runs_the_step_again(
    storage: DjangoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await step(storage, 6, "tea")
    real_commit = storage.database.commit

    async def failing_commit(*args: Any) -> None:
        raise ConnectionError("the database went away at commit")

    monkeypatch.setattr(storage.database, "commit", failing_commit)
    with pytest.raises(StorageUnavailable):
        await step(storage, 6, "soup")
    row = await stored(6)
    assert row is not None and row.data == {"items": ["tea"]}
    # on_enter's message went out before the failed save: the redelivery sends it again
    # (at least once, like any Bot API call of an update whose commit failed).
    monkeypatch.setattr(storage.database, "commit", real_commit)
    await step(storage, 6, "soup")
    row = await stored(6)
    assert row is not None and row.data == {"items": ["tea", "soup"]}
    assert BOT.sent.count((6, "2 item(s)")) == 2


def test_registry_refuses_a_taken_key_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="taken"):
        registry.add("start", Shopping)
    with pytest.raises(UnknownNode):
        registry.get("nope")
    assert registry.key_of(Shopping(Basket())) == "shopping"


# -- admin ----------------------------------------------------------------------------------
def node_row(user_id: int, key: str = "shopping", data: Any = None) -> NodeState:
    return NodeState.objects.create(
        bot_id=BOT_ID,
        chat_id=user_id,
        user_id=user_id,
        router="test-nodes",
        node_key=key,
        data=data if data is not None else {"items": ["tea"]},
    )


def change_url(row: NodeState) -> str:
    return reverse("admin:botdialogs_nodestate_change", args=[row.pk])


def test_admin_edit_is_validated_against_the_node_model(admin_client: Client) -> None:
    row = node_row(7)
    page = admin_client.get(change_url(row)).content.decode()
    assert "&quot;tea&quot;" in page or '"tea"' in page
    bad = admin_client.post(change_url(row), {"node_key": "shopping", "data": '{"items": 3}'})
    assert bad.status_code == 200 and "Not valid for Shopping" in bad.content.decode()
    unknown = admin_client.post(change_url(row), {"node_key": "gone", "data": "{}"})
    assert unknown.status_code == 200 and "No node is registered" in unknown.content.decode()
    row.refresh_from_db()
    assert (row.node_key, row.data) == ("shopping", {"items": ["tea"]})
    good = admin_client.post(change_url(row), {"node_key": "shopping", "data": '{"items": []}'})
    assert good.status_code == 302
    row.refresh_from_db()
    assert row.data == {"items": []}


def test_admin_searches_by_user_filters_by_node_and_moves_users(admin_client: Client) -> None:
    first, second = node_row(8), node_row(9, key="start", data={})
    changelist = reverse("admin:botdialogs_nodestate_changelist")
    found = admin_client.get(changelist, {"q": "8"}).content.decode()
    assert f"/{first.pk}/change/" in found and f"/{second.pk}/change/" not in found
    at_start = admin_client.get(changelist, {"node": "start"}).content.decode()
    assert f"/{second.pk}/change/" in at_start and f"/{first.pk}/change/" not in at_start
    admin_client.post(
        changelist, {"action": "move_to_start", "_selected_action": [first.pk], "index": 0}
    )
    first.refresh_from_db()
    assert (first.node_key, first.data) == ("start", {})
    admin_client.post(
        changelist,
        {
            "action": "move_to_node",
            "node": "test-nodes:shopping",
            "_selected_action": [second.pk],
            "index": 0,
        },
    )
    second.refresh_from_db()
    assert (second.node_key, second.data) == ("shopping", {"items": []})


async def test_feed_runs_a_step_for_an_event_that_is_not_an_update(
    storage: DjangoStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook a timer (part 8) uses: a step in the user's unit of work, outside updates."""
    from botdialogs.nodes import router as nodes_router

    monkeypatch.setattr(nodes_router, "get_bot", lambda name: BOT)
    monkeypatch.setattr(nodes_router, "get_storage", lambda: storage)
    await step(storage, 10, "tea")
    await nodes.feed("default", 10, 10, "reminder")
    row = await stored(10)
    assert row is not None and row.data == {"items": ["tea", "reminder"]}
    assert BOT.sent[-1] == (10, "2 item(s)")


def test_site_code_moves_a_user_inline_after_commit_only(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """BACKGROUND "inline" (the embedded default): the move runs in this process once the
    transaction commits; a rolled-back one sends nothing (Celery:
    tests/nodes/test_nodes_webhook.py)."""
    from django.db import transaction

    from botdialogs.nodes import router as nodes_router
    from project.bot.nodes import Cart, ChoosingFood, food_nodes

    settings.BOTDIALOGS = {**settings.BOTDIALOGS, "BACKGROUND": "inline"}
    bot = FakeBot()
    monkeypatch.setattr(nodes_router, "get_bot", lambda name: bot)
    with pytest.raises(RuntimeError), transaction.atomic():
        food_nodes.user(11).to(ChoosingFood(Cart(items={"soup": 1})))
        raise RuntimeError("rolled back")
    assert not NodeState.objects.filter(user_id=11).exists() and bot.sent == []
    with transaction.atomic():
        food_nodes.user(11).to(ChoosingFood(Cart(items={"tea": 2})))
        assert bot.sent == []  # not before the commit
    row = NodeState.objects.get(user_id=11)
    assert (row.router, row.node_key, row.data) == ("food", "food.cart", {"items": {"tea": 2}})
    assert bot.sent == [(11, "Add something to your cart:\n2 x Tea")]
