"""The counter flow as nodes (botdialogs.nodes): the "nodes" row of bench/engine.py.

/start enters the counter node ("Count: 0" with a "+1" button); each press returns a new
counter node with the count plus one, whose ``on_enter`` sends "Count: <n>".
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, F, Router
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, TelegramObject
from pydantic import BaseModel

from botdialogs.nodes import Node, NodeRegistry, NodeRouter

PLUS = "c:+1"
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="+1", callback_data=PLUS)]]
)


class Count(BaseModel):
    """The counter's data."""

    count: int = 0


registry = NodeRegistry()


@registry.register("counter")
class Counter(Node[Bot, TelegramObject, int, Count]):
    """Shows the count; "+1" moves to a counter one higher."""

    async def on_enter(self, user_id: int, ctx: Bot) -> None:
        """Show the count."""
        await ctx.send_message(user_id, f"Count: {self.data.count}", reply_markup=KEYBOARD)

    async def on_event(self, user_id: int, event: TelegramObject, ctx: Bot) -> Any:
        """One press: one more."""
        if getattr(event, "data", None) == PLUS:
            return Counter(Count(count=self.data.count + 1))
        return self


def user_id_of(event: Any) -> int:
    """The sender of a message or a press."""
    return int(event.from_user.id)


counter_nodes: NodeRouter[Bot, TelegramObject, int] = NodeRouter(
    registry,
    start=lambda user_id: Counter(),
    user_id_of=user_id_of,
    context_factory=lambda bot: bot,
    name="bench-counter",
    first_event_to_start=False,
)


def build_router() -> Router:
    """The counter nodes on a new Router (messages and presses)."""
    router = Router(name="bench-nodes")
    router.message.register(counter_nodes.route)
    router.callback_query.register(counter_nodes.route, F.data == PLUS)
    return router
