"""One table of BaseStorage cases, run against aiogram's MemoryStorage, aiogram's RedisStorage
and DjangoStorage (on whichever database this run uses): the three must agree.

Each case is an async function of (storage, key factory). Cases run through asgiref's
async_to_sync, so DjangoStorage's queries run on the test's own connection and transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import BaseStorage, StorageKey
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisStorage
from asgiref.sync import async_to_sync

from botdialogs.storage import DjangoStorage
from botdialogs.testing.queues import redis_url

# Every storage runs inside the test's database transaction (only DjangoStorage uses it).
pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = redis_url()
KeyFactory = Callable[..., StorageKey]
Case = Callable[[BaseStorage, KeyFactory], Awaitable[None]]


class Form(StatesGroup):
    name = State()


def key_factory() -> KeyFactory:
    # A fresh bot id per test: Redis keeps keys between tests, the database does not.
    bot_id = uuid.uuid4().int % 10**9

    def make(**overrides: Any) -> StorageKey:
        values: dict[str, Any] = {
            "bot_id": bot_id,
            "chat_id": 100,
            "user_id": 200,
            "thread_id": None,
            "business_connection_id": None,
            "destiny": "default",
        }
        values.update(overrides)
        if "bot_id" in overrides:
            values["bot_id"] = bot_id + overrides["bot_id"]
        return StorageKey(**values)

    return make


CASES: dict[str, Case] = {}


def case(function: Case) -> Case:
    CASES[function.__name__] = function
    return function


@case
async def empty_key_reads_empty(storage: BaseStorage, key: KeyFactory) -> None:
    assert await storage.get_state(key()) is None
    assert await storage.get_data(key()) == {}
    assert await storage.get_value(key(), "missing") is None
    assert await storage.get_value(key(), "missing", 7) == 7


@case
async def state_object_is_stored_as_its_string(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_state(key(), Form.name)
    assert await storage.get_state(key()) == "Form:name"


@case
async def state_string_and_clearing(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_state(key(), "Some:state")
    assert await storage.get_state(key()) == "Some:state"
    await storage.set_state(key(), None)
    assert await storage.get_state(key()) is None


@case
async def data_round_trip(storage: BaseStorage, key: KeyFactory) -> None:
    data = {"name": "Ann", "n": 3, "f": 1.5, "ok": True, "none": None, "list": [1, "a", {"x": []}]}
    await storage.set_data(key(), data)
    assert await storage.get_data(key()) == data


@case
async def get_data_returns_a_copy(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_data(key(), {"a": 1})
    first = await storage.get_data(key())
    first["a"] = 2
    first["b"] = 3
    assert await storage.get_data(key()) == {"a": 1}


@case
async def set_data_replaces_and_empty_clears(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_data(key(), {"a": 1, "b": 2})
    await storage.set_data(key(), {"c": 3})
    assert await storage.get_data(key()) == {"c": 3}
    await storage.set_data(key(), {})
    assert await storage.get_data(key()) == {}


@case
async def update_data_merges(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_data(key(), {"a": 1, "b": 2})
    result = await storage.update_data(key(), {"b": 20, "c": 30})
    assert result == {"a": 1, "b": 20, "c": 30}
    assert await storage.get_data(key()) == {"a": 1, "b": 20, "c": 30}
    assert await storage.get_value(key(), "c") == 30


@case
async def state_and_data_are_independent(storage: BaseStorage, key: KeyFactory) -> None:
    await storage.set_state(key(), "A:b")
    await storage.set_data(key(), {"x": 1})
    await storage.set_data(key(), {})
    assert await storage.get_state(key()) == "A:b"
    await storage.set_data(key(), {"x": 2})
    await storage.set_state(key(), None)
    assert await storage.get_data(key()) == {"x": 2}


@case
async def keys_differing_in_any_part_are_apart(storage: BaseStorage, key: KeyFactory) -> None:
    variants = [
        {"bot_id": 1},
        {"chat_id": 101},
        {"user_id": 201},
        {"thread_id": 5},
        {"business_connection_id": "bc1"},
        {"destiny": "other"},
        {"destiny": "aiogd:stack:"},
        {"destiny": "aiogd:context:abc"},
    ]
    await storage.set_state(key(), "Base:state")
    await storage.set_data(key(), {"base": True})
    for number, overrides in enumerate(variants):
        assert await storage.get_state(key(**overrides)) is None, overrides
        assert await storage.get_data(key(**overrides)) == {}, overrides
        await storage.set_data(key(**overrides), {"variant": number})
    assert await storage.get_data(key()) == {"base": True}
    assert await storage.get_state(key()) == "Base:state"
    for number, overrides in enumerate(variants):
        assert await storage.get_data(key(**overrides)) == {"variant": number}, overrides


@case
async def dialog_stack_and_context_round_trip(storage: BaseStorage, key: KeyFactory) -> None:
    stack = {
        "_id": "",
        "intents": ["i1", "i2"],
        "last_message_id": 42,
        "last_reply_keyboard": False,
        "last_media_id": None,
        "last_media_unique_id": None,
        "last_income_media_group_id": None,
    }
    context = {
        "_intent_id": "i2",
        "_stack_id": "",
        "state": "Form:name",
        "start_data": {"from": "menu"},
        "dialog_data": {"cart": {"pizza": 2}},
        "widget_data": {"sel": ["a"]},
        "access_settings": {"user_ids": [200], "custom": None},
    }
    stack_key = key(user_id=100, destiny="aiogd:stack:")
    context_key = key(user_id=100, destiny="aiogd:context:i2")
    await storage.set_data(context_key, context)
    await storage.set_data(stack_key, stack)
    assert await storage.get_data(stack_key) == stack
    assert await storage.get_data(context_key) == context
    await storage.set_data(context_key, {})
    assert await storage.get_data(context_key) == {}
    assert await storage.get_data(stack_key) == stack


@case
async def unknown_dialog_fields_survive(storage: BaseStorage, key: KeyFactory) -> None:
    # A newer aiogram_dialog may store fields we have no column for yet.
    stack = {"_id": "s1", "intents": [], "last_message_id": None, "future_field": [1, 2]}
    stack.update(last_reply_keyboard=False, last_media_id=None, last_media_unique_id=None)
    stack.update(last_income_media_group_id=None)
    await storage.set_data(key(destiny="aiogd:stack:s1"), stack)
    assert await storage.get_data(key(destiny="aiogd:stack:s1")) == stack


def _redis() -> BaseStorage:
    return RedisStorage.from_url(
        REDIS_URL,
        key_builder=DefaultKeyBuilder(
            with_bot_id=True, with_destiny=True, with_business_connection_id=True
        ),
    )


# Factories, not instances: a Redis client belongs to the event loop it is made on.
STORAGES: dict[str, Callable[[], BaseStorage]] = {
    "memory": MemoryStorage,
    "redis": _redis,
    "django": DjangoStorage,
    "django-prepared": lambda: DjangoStorage(prepared_statements=True),
}


@pytest.fixture(params=list(STORAGES))
def make_storage(request: pytest.FixtureRequest) -> Callable[[], BaseStorage]:
    return STORAGES[request.param]


@pytest.mark.parametrize("name", list(CASES))
def test_storage_contract(make_storage: Callable[[], BaseStorage], name: str) -> None:
    async def run() -> None:
        storage = make_storage()
        try:
            await CASES[name](storage, key_factory())
        finally:
            await storage.close()

    async_to_sync(run)()
