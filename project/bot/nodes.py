"""The food order of the demo bot in nodes style: one class per step, typed data.

Same behaviour and the same ``Order`` rows as the windows version (:mod:`.dialogs`). The
main menu (a dialog) hands the user to :class:`Hungry`; "Back to menu" starts the menu
dialog again from a node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram_dialog import StartMode
from django.utils.translation import gettext as _
from pydantic import BaseModel

from botdialogs.engine.bots import bot_name_for_id
from botdialogs.nodes import Node, NodeRegistry, NodeRouter, current_dialog_manager
from project.bot.states import MainMenu
from project.bot.texts import dish, quantity

MENU = {"pizza": "Pizza", "soup": "Soup", "salad": "Salad", "tea": "Tea"}
PREFIX = "n:"  # callback data of node buttons; aiogram_dialog's buttons never start so


@dataclass
class OrderContext:
    """What every food-order node gets: the bot and its name in BOTDIALOGS['BOTS']."""

    bot: Bot
    bot_name: str


def keyboard(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    """Inline buttons from (text, action) pairs."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=text, callback_data=PREFIX + action) for text, action in row]
            for row in rows
        ]
    )


def pressed(event: CallbackQuery) -> str:
    """The node action of a press ("" for anything else)."""
    return (event.data or "").removeprefix(PREFIX)


registry = NodeRegistry()
OrderNode = Node[OrderContext, CallbackQuery, int, Any]


class Cart(BaseModel):
    """The cart: item key -> quantity."""

    items: dict[str, int] = {}


class Placed(BaseModel):
    """The order a user placed."""

    order_id: int


@registry.register("food.hungry")
class Hungry(Node[OrderContext, CallbackQuery, int, Any]):
    """ "Are you hungry?" Yes: the cart; No: come back later."""

    async def on_enter(self, user_id: int, ctx: OrderContext) -> None:
        """Ask."""
        await ctx.bot.send_message(
            user_id,
            _("Are you hungry?"),
            reply_markup=keyboard([(_("Yes"), "yes"), (_("No"), "no")]),
        )

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: OrderContext) -> Any:
        """Yes: the cart; no: not hungry."""
        return {"yes": ChoosingFood, "no": NotHungry}.get(pressed(event), lambda: self)()


@registry.register("food.cart")
class ChoosingFood(Node[OrderContext, CallbackQuery, int, Cart]):
    """Add items; Finish places the order, Cancel goes back to the menu."""

    async def on_enter(self, user_id: int, ctx: OrderContext) -> None:
        """Show the cart and the menu."""
        lines = [quantity(qty, MENU[key]) for key, qty in self.data.items.items()]
        text = (
            _("Add something to your cart:") + "\n" + ("\n".join(lines) or _("Your cart is empty."))
        )
        rows = [[(f"+ {dish(name)}", f"add:{key}")] for key, name in MENU.items()]
        last = [(_("Finish"), "finish")] if self.data.items else []
        await ctx.bot.send_message(
            user_id, text, reply_markup=keyboard(*rows, [*last, (_("Cancel"), "cancel")])
        )

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: OrderContext) -> Any:
        """One press: add an item (a new cart node shows it), finish or cancel."""
        action = pressed(event)
        if action.startswith("add:") and action[4:] in MENU:
            items = dict(self.data.items)
            items[action[4:]] = items.get(action[4:], 0) + 1
            return ChoosingFood(Cart(items=items))
        if action == "finish" and self.data.items:
            return OrderPlaced(Placed(order_id=await self._place(event, ctx)))
        if action == "cancel":
            return BackToMenu()
        return self

    async def _place(self, event: CallbackQuery, ctx: OrderContext) -> int:
        from project.shop.models import Order

        # Keyed by the press like the windows version: a redelivered press finds its order.
        order, _ = await Order.objects.aget_or_create(
            bot_name=ctx.bot_name,
            callback_query_id=event.id,
            defaults={
                "telegram_user_id": event.from_user.id,
                "telegram_chat_id": event.message.chat.id if event.message else event.from_user.id,
                "items": {MENU[key]: qty for key, qty in self.data.items.items()},
            },
        )
        return order.pk


@registry.register("food.placed")
class OrderPlaced(Node[OrderContext, CallbackQuery, int, Placed]):
    """The order is placed."""

    async def on_enter(self, user_id: int, ctx: OrderContext) -> None:
        """Thank the user."""
        await ctx.bot.send_message(
            user_id,
            _("Order #{order_id} placed. Thank you!").format(order_id=self.data.order_id),
            reply_markup=keyboard([(_("Back to menu"), "menu")]),
        )

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: OrderContext) -> Any:
        """Back to the menu."""
        return BackToMenu() if pressed(event) == "menu" else self


@registry.register("food.not_hungry")
class NotHungry(Node[OrderContext, CallbackQuery, int, Any]):
    """Not hungry."""

    async def on_enter(self, user_id: int, ctx: OrderContext) -> None:
        """Say goodbye."""
        await ctx.bot.send_message(
            user_id,
            _("Come back when you are hungry!"),
            reply_markup=keyboard([(_("Back to menu"), "menu")]),
        )

    async def on_event(self, user_id: int, event: CallbackQuery, ctx: OrderContext) -> Any:
        """Back to the menu."""
        return BackToMenu() if pressed(event) == "menu" else self


@registry.register("food.menu")
class BackToMenu(Node[OrderContext, CallbackQuery, int, Any]):
    """Resting: the main menu dialog has the user (a node starting a dialog)."""

    async def on_enter(self, user_id: int, ctx: OrderContext) -> None:
        """Start the main menu dialog."""
        await current_dialog_manager().start(MainMenu.menu, mode=StartMode.RESET_STACK)


def order_context(bot: Bot) -> OrderContext:
    """The context of a step for ``bot``."""
    return OrderContext(bot=bot, bot_name=bot_name_for_id(bot.id) or "default")


food_nodes: NodeRouter[OrderContext, CallbackQuery, int] = NodeRouter(
    registry,
    start=lambda user_id: Hungry(),
    user_id_of=lambda event: event.from_user.id,
    context_factory=order_context,
    name="food",
    first_event_to_start=False,
)


def build_router() -> Router:
    """A new Router for the node buttons (a new one each call: Routers attach once)."""
    router = Router(name="demo-nodes")
    router.callback_query.register(food_nodes.route, F.data.startswith(PREFIX))
    return router
