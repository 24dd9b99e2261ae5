"""A botnodes-0.1-style router, for comparison only: node state in one Redis hash.

Each event: ``HGET`` the user's node (key and JSON data), rebuild it with pydantic's
``model_validate`` (no ``__init__``), run it, ``HSET`` the next one. No lock, no
transaction: what botnodes does, measured on the same counter flow as botdialogs' nodes.
"""

from __future__ import annotations

import json
from typing import Any

from aiogram import Bot, Dispatcher, F
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from pydantic import BaseModel
from redis.asyncio import Redis

PLUS = "c:+1"
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="+1", callback_data=PLUS)]]
)
HASH = "botnodes:bench"


class PeerCounter(BaseModel):
    """A botnodes node: the pydantic model is the node."""

    count: int = 0

    async def on_enter(self, user_id: int, bot: Bot) -> None:
        """Show the count."""
        await bot.send_message(user_id, f"Count: {self.count}", reply_markup=KEYBOARD)

    async def on_event(self, user_id: int, event: Any, bot: Bot) -> PeerCounter:
        """One press: one more."""
        if getattr(event, "data", None) == PLUS:
            return PeerCounter(count=self.count + 1)
        return self


NODES: dict[str, type[PeerCounter]] = {"counter": PeerCounter}


class PeerRouter:
    """The botnodes-style router: HGET, step, HSET."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def route(self, event: Any, bot: Bot) -> None:
        """One event of one user."""
        user_id = event.from_user.id
        raw = await self.redis.hget(HASH, str(user_id))
        if raw is None:
            node = PeerCounter()
            await node.on_enter(user_id, bot)
        else:
            stored = json.loads(raw)
            node = NODES[stored["key"]].model_validate(stored["data"])
            following = await node.on_event(user_id, event, bot)
            if following is not node:
                await following.on_enter(user_id, bot)
            node = following
        await self.redis.hset(
            HASH, str(user_id), json.dumps({"key": "counter", "data": node.model_dump()})
        )


def peer_dispatcher(redis: Redis) -> Dispatcher:
    """A plain aiogram Dispatcher (its default in-memory FSM) routing to the peer."""
    peer = PeerRouter(redis)
    dispatcher = Dispatcher()
    dispatcher.message.register(peer.route)
    dispatcher.callback_query.register(peer.route, F.data == PLUS)
    return dispatcher
