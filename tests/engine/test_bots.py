"""The Bot/Dispatcher registry: one Dispatcher per bot per process, one Bot session per loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from asgiref.sync import async_to_sync

from botdialogs.engine import bots
from botdialogs.engine.middleware import TransactionalFSMMiddleware
from botdialogs.engine.sync import call_async
from botdialogs.exceptions import NotInAsyncContext, UnknownBot
from botdialogs.storage import DjangoStorage

TWO_BOTS = {
    "BOTS": {
        "default": {"ROUTER": "botdialogs.testing.bots.steps_router"},
        "support": {
            "ROUTER": "botdialogs.testing.bots.counter_router",
            "TOKEN": "123456:real-token",
        },
    }
}


def test_one_dispatcher_per_bot_per_process(settings: Any) -> None:
    settings.BOTDIALOGS = TWO_BOTS
    seen: list[Dispatcher] = []
    threads = [
        threading.Thread(target=lambda: seen.append(bots.get_dispatcher("default")))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(d) for d in seen}) == 1
    assert bots.get_dispatcher("default") is seen[0]
    assert bots.get_dispatcher("support") is not seen[0]


def test_dispatcher_has_django_storage_and_the_transactional_fsm(settings: Any) -> None:
    settings.BOTDIALOGS = TWO_BOTS
    dispatcher = bots.get_dispatcher("default")
    assert isinstance(dispatcher.fsm, TransactionalFSMMiddleware)
    assert isinstance(dispatcher.fsm.storage, DjangoStorage)
    assert dispatcher.fsm in list(dispatcher.update.outer_middleware)
    assert dispatcher["botdialogs_bot_name"] == "default"


def test_several_bots_have_their_own_ids_and_api_servers(settings: Any) -> None:
    settings.BOTDIALOGS = TWO_BOTS
    assert bots.bot_id("support") == 123456
    assert bots.bot_id("default") == bots.local_bot_id("default") != bots.local_bot_id("x")
    assert bots.bot_name_for_id(123456) == "support"

    async def both() -> tuple[Bot, Bot]:
        return bots.get_bot("default"), bots.get_bot("support")

    local, real = call_async(both)
    assert "/localtg/bot" in local.session.api.base
    assert real.session.api.base.startswith("https://api.telegram.org/")


def test_unknown_bot_is_a_clear_error() -> None:
    with pytest.raises(UnknownBot, match="nope"):
        bots.get_dispatcher("nope")


def test_same_loop_same_bot_other_loop_other_bot() -> None:
    async def twice() -> tuple[Bot, Bot]:
        return bots.get_bot("default"), bots.get_bot("default")

    first, again = asyncio.run(twice())
    assert first is again
    other, _ = asyncio.run(twice())
    assert other is not first  # the first loop is closed: its session is never reused


def test_sync_callers_get_a_fresh_session_closed_after_the_call() -> None:
    made: list[Bot] = []

    async def use_bot() -> None:
        bot = bots.get_bot("default")
        await bot.session.create_session()  # open the aiohttp session on this loop
        made.append(bot)

    call_async(use_bot)
    call_async(use_bot)
    assert made[0] is not made[1]
    for bot in made:
        assert bot.session._session is None or bot.session._session.closed


def test_call_async_refuses_to_block_a_running_loop() -> None:
    async def inner() -> None:
        async def noop() -> None:
            return None

        call_async(noop)

    with pytest.raises(NotInAsyncContext):
        async_to_sync(inner)()


def test_call_async_finishes_tasks_the_call_left_running() -> None:
    # aiogram_dialog's background events from a handler are fire-and-forget tasks, started
    # with call_soon + create_task; on call_async's own loop they must still complete.
    finished: list[str] = []

    async def handler_like() -> None:
        async def background_event() -> None:
            await asyncio.sleep(0)
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(follow_up()))
            finished.append("event")

        async def follow_up() -> None:
            finished.append("follow-up")

        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(background_event()))

    call_async(handler_like)
    assert finished == ["event", "follow-up"]


def test_local_bot_ids_do_not_collide_and_cannot_meet_real_ones() -> None:
    # These two names share a CRC32: local bots once shared one id, and one dialog stack.
    assert bots.local_bot_id("plumless") != bots.local_bot_id("buckeroo")
    names = [f"bot{n}" for n in range(20_000)] + ["plumless", "buckeroo", "default"]
    ids = {bots.local_bot_id(name) for name in names}
    assert len(ids) == len(names)
    # Real Telegram ids have at most 52 significant bits; a bigint column holds 63.
    assert all(2**52 <= bot_id < 2**53 for bot_id in ids)
    assert bots.local_bot_id("default") == 5239994614770160  # stable across processes
