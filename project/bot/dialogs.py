"""The demo bot: a main menu, the food-order flow, a background counter, order status, the
daily special and the user's settings (their language).

Every text goes through Django's translation (``gettext_lazy`` as ``_``, and
:class:`botdialogs.i18n.Translated`): project/locale holds German and Russian catalogs.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Button, Cancel, Row, Select, Start, SwitchTo, WebApp
from aiogram_dialog.widgets.text import Format
from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils.translation import get_language, gettext
from django.utils.translation import gettext_lazy as _

from botdialogs import timers
from botdialogs.i18n import Translated, set_language, supported_language
from botdialogs.payments import StarsInvoice, invoice_on_click
from project.bot.counter import TICKS, start_counter, stop_counter, ticks_seen
from project.bot.states import (
    Counter,
    DailySpecial,
    FoodOrder,
    MainMenu,
    OrderStatus,
    Settings,
)
from project.bot.texts import dish, order_summary, quantity

#: Item key -> the shop's dish name (what an order stores; shown translated).
MENU = {"pizza": "Pizza", "soup": "Soup", "salad": "Salad", "tea": "Tea"}


async def menu_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    name = dialog_manager.event.from_user.first_name if dialog_manager.event.from_user else ""
    return {"name": name or gettext("there")}


async def on_order_nodes(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """Hand the user from the menu dialog to the nodes-style food order (same unit of work)."""
    from project.bot.nodes import Hungry, food_nodes

    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    user = food_nodes.user(callback.from_user.id, chat_id=chat_id, bot=_bot_name(manager))
    await manager.done()
    await user.ato(Hungry())


BACK = _("Back to menu")


def main_menu() -> Dialog:
    return Dialog(
        Window(
            Translated(_("Hello, {name}! What would you like to do?")),
            Start(Translated(_("Order food")), id="order", state=FoodOrder.hungry),
            Button(Translated(_("Order food (nodes)")), id="order_nodes", on_click=on_order_nodes),
            Row(
                Start(Translated(_("Counter")), id="counter", state=Counter.main),
                Start(Translated(_("My orders")), id="orders", state=OrderStatus.orders),
            ),
            state=MainMenu.menu,
            getter=menu_getter,
        ),
    )


async def cart_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    cart: dict[str, int] = dialog_manager.dialog_data.get("cart", {})
    lines = [quantity(qty, MENU[key]) for key, qty in cart.items()]
    return {
        "items": [(key, dish(name)) for key, name in MENU.items()],
        "cart_text": "\n".join(lines) if lines else gettext("Your cart is empty."),
        "has_items": bool(cart),
        "menu_url": menu_url(_bot_name(dialog_manager)),
    }


def menu_url(bot_name: str) -> str:
    """The Mini App page listing the dishes (project.shop.views): absolute for Telegram."""
    from django.urls import reverse

    return settings.DEMO_SITE_URL + reverse("shop:menu", kwargs={"bot_name": bot_name})


async def on_item(callback: CallbackQuery, widget: Any, manager: DialogManager, item: str) -> None:
    await cancel_order_timers(manager)
    cart = manager.dialog_data.setdefault("cart", {})
    cart[item] = cart.get(item, 0) + 1


async def on_finish(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    from project.shop.models import Order

    cart = manager.dialog_data.get("cart", {})
    # The order commits on its own, before the dialog's state: keyed by the press, a
    # redelivered press (its first try failed after this line) finds it, never adds another.
    order, _ = await Order.objects.aget_or_create(
        bot_name=_bot_name(manager),
        callback_query_id=callback.id,
        defaults={
            "telegram_user_id": callback.from_user.id,
            "telegram_chat_id": (
                callback.message.chat.id if callback.message else callback.from_user.id
            ),
            "items": {MENU[key]: qty for key, qty in cart.items()},
        },
    )
    manager.dialog_data["order_id"] = order.pk
    await manager.switch_to(FoodOrder.placed)


# -- the food order's idle timers: "Still hungry?", then the order closes -----------------
REMIND_KEY = "food:remind"
CLOSE_KEY = "food:close"


def _chat(manager: DialogManager) -> tuple[str, int, int]:
    """(bot name, user id, chat id) of the manager's event."""
    chat = manager.middleware_data.get("event_chat")
    user = manager.middleware_data.get("event_from_user")
    user_id = user.id if user is not None else 0
    return _bot_name(manager), user_id, chat.id if chat is not None else user_id


async def placed_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    """The order id: set by Finish, or given by the Mini App's start (project.shop.views)."""
    start = dialog_manager.start_data if isinstance(dialog_manager.start_data, dict) else {}
    return {"order_id": dialog_manager.dialog_data.get("order_id", start.get("order_id"))}


async def order_invoice(manager: DialogManager) -> StarsInvoice:
    """The Stars invoice of the placed order (project.shop.payments)."""
    from project.shop.models import Order
    from project.shop.payments import order_invoice as invoice_of

    order_id = (await placed_getter(manager))["order_id"]
    return invoice_of(await Order.objects.aget(pk=order_id))


async def on_order_start(start_data: Any, manager: DialogManager) -> None:
    """An idle user is reminded, then the order closes (delays are settings).

    An order placed from the Mini App starts at "placed": nothing to wait for.
    """
    if isinstance(start_data, dict) and "order_id" in start_data:
        return
    bot, user_id, chat_id = _chat(manager)
    # Scheduled by import (botdialogs.timers): in a handler they commit with this update.
    await timers.aschedule(
        bot,
        user_id,
        chat_id,
        "update",
        after=settings.DEMO_FOOD_REMIND_AFTER,
        data={"reminded": True},
        key=REMIND_KEY,
    )
    await timers.aschedule(
        bot, user_id, chat_id, "done", after=settings.DEMO_FOOD_CLOSE_AFTER, key=CLOSE_KEY
    )


async def cancel_order_timers(manager: DialogManager) -> None:
    """Any answer (and closing the order) cancels both idle timers."""
    bot, _user_id, chat_id = _chat(manager)
    for key in (REMIND_KEY, CLOSE_KEY):
        await timers.acancel(bot=bot, chat_id=chat_id, key=key)
    manager.dialog_data.pop("reminded", None)


async def on_answer(
    callback: CallbackQuery, widget: Any, manager: DialogManager, *args: Any
) -> None:
    """An answer: the user is not idle."""
    await cancel_order_timers(manager)


async def on_order_close(result: Any, manager: DialogManager) -> None:
    await cancel_order_timers(manager)


async def hungry_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    return {"reminded": bool(dialog_manager.dialog_data.get("reminded"))}


def food_order() -> Dialog:
    return Dialog(
        Window(
            Translated(_("Still hungry?"), when="reminded"),
            Translated(_("Are you hungry?"), when=~F["reminded"]),
            Row(
                SwitchTo(Translated(_("Yes")), id="yes", state=FoodOrder.cart, on_click=on_answer),
                SwitchTo(
                    Translated(_("No")), id="no", state=FoodOrder.not_hungry, on_click=on_answer
                ),
            ),
            state=FoodOrder.hungry,
            getter=hungry_getter,
        ),
        Window(
            Translated(_("Add something to your cart:")),
            Format("{cart_text}"),
            Select(
                Format("+ {item[1]}"),
                id="item",
                item_id_getter=lambda item: item[0],
                items="items",
                on_click=on_item,
            ),
            Row(
                Button(Translated(_("Finish")), id="finish", on_click=on_finish, when="has_items"),
                Cancel(Translated(_("Cancel"))),
            ),
            # A Mini App: the page orders for itself and starts "Order #N placed" (shop.views).
            WebApp(Translated(_("Open the menu")), url=Format("{menu_url}"), id="menu_app"),
            state=FoodOrder.cart,
            getter=cart_getter,
        ),
        Window(
            Translated(_("Order #{order_id} placed. Thank you!")),
            Button(
                Translated(_("Pay in Stars")), id="pay", on_click=invoice_on_click(order_invoice)
            ),
            Cancel(Translated(BACK)),
            state=FoodOrder.placed,
            getter=placed_getter,
        ),
        Window(
            Translated(_("Come back when you are hungry!")),
            Cancel(Translated(BACK)),
            state=FoodOrder.not_hungry,
        ),
        on_start=on_order_start,
        on_close=on_order_close,
    )


def _bot_name(manager: DialogManager) -> str:
    return manager.middleware_data.get("botdialogs_bot_name", "default")


async def counter_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    data = dialog_manager.dialog_data
    count = ticks_seen(data)
    return {"count": count, "idle": not data.get("running", False) or count >= TICKS}


async def on_count(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    # A new count: forget the ticks of the last one (pressing again replaces its timers).
    for key in [key for key in manager.dialog_data if key.startswith("tick:")]:
        del manager.dialog_data[key]
    manager.dialog_data["running"] = True
    chat = callback.message.chat.id if callback.message else callback.from_user.id
    await start_counter(_bot_name(manager), callback.from_user.id, chat)


async def on_counter_close(result: Any, manager: DialogManager) -> None:
    """Pending ticks die with the dialog (they would update whatever dialog is on top)."""
    bot, _user_id, chat_id = _chat(manager)
    await stop_counter(bot, chat_id)


def counter() -> Dialog:
    """Counts to ten, one tick a second, each tick sent from the background."""
    return Dialog(
        Window(
            Translated(_("Counter: {count}")),
            Button(Translated(_("Count to ten")), id="count", on_click=on_count, when="idle"),
            Cancel(Translated(BACK)),
            state=Counter.main,
            getter=counter_getter,
        ),
        on_close=on_counter_close,
    )


@sync_to_async
def _orders_text(bot_name: str, user_id: int) -> str:
    from project.shop.models import Order

    orders = Order.objects.filter(bot_name=bot_name, telegram_user_id=user_id)[:5]
    lines = [f"#{o.pk}: {order_summary(o.items)} - {o.get_status_display()}" for o in orders]
    return "\n".join(lines) or gettext("You have no orders yet.")


async def orders_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    user = dialog_manager.event.from_user
    text = await _orders_text(_bot_name(dialog_manager), user.id if user else 0)
    return {"orders_text": text}


def order_status() -> Dialog:
    """The user's latest orders; the shop updates it when an order's status changes."""
    return Dialog(
        Window(
            Translated(_("Your orders:")),
            Format("{orders_text}"),
            Cancel(Translated(BACK)),
            state=OrderStatus.orders,
            getter=orders_getter,
        ),
    )


async def special_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    data = dialog_manager.start_data if isinstance(dialog_manager.start_data, dict) else {}
    return {"dish": dish(data["dish"]) if data.get("dish") else gettext("a surprise")}


def daily_special() -> Dialog:
    """Today's special, sent every morning to every chat (project.shop.specials)."""
    return Dialog(
        Window(
            Translated(_("Today's special: {dish}")),
            Start(Translated(_("Order food")), id="special_order", state=FoodOrder.hungry),
            Cancel(Translated(_("Not today"))),
            state=DailySpecial.main,
            getter=special_getter,
        ),
    )


async def settings_getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    current = supported_language(get_language()) or ""
    return {
        # Each language in its own name, the one in use ticked.
        "languages": [
            (code, f"✓ {name}" if code == current else name) for code, name in settings.LANGUAGES
        ],
        "language": dict(settings.LANGUAGES).get(current, current),
    }


async def on_language(
    callback: CallbackQuery, widget: Any, manager: DialogManager, code: str
) -> None:
    """Store the choice; aiogram_dialog then redraws this window in the new language."""
    await set_language(manager, code)


def user_settings() -> Dialog:
    """The user's settings: the language the bot speaks to them in (/settings)."""
    return Dialog(
        Window(
            Translated(_("Settings")),
            Translated(_("Language: {language}")),
            Select(
                Format("{item[1]}"),
                id="language",
                item_id_getter=lambda item: item[0],
                items="languages",
                on_click=on_language,
            ),
            Cancel(Translated(_("Close"))),
            state=Settings.main,
            getter=settings_getter,
        ),
    )


#: What /settings and /start show in the bot's menu of commands (manage.py setcommands).
COMMANDS = [
    ("start", _("Main menu")),
    ("settings", _("Settings: your language")),
]


async def on_start(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(MainMenu.menu, mode=StartMode.RESET_STACK)


async def on_settings(message: Message, dialog_manager: DialogManager) -> None:
    """Open the settings on top of whatever dialog is open (closing them goes back there)."""
    await dialog_manager.start(Settings.main)


def build_router() -> Router:
    """A new Router with the demo bot's dialogs (a new one each call: Routers attach once)."""
    router = Router(name="demo")
    router.message.register(on_start, CommandStart())
    router.message.register(on_settings, Command("settings", "language"))
    from project.bot.nodes import build_router as build_nodes_router

    # Node buttons first: a dialog open below takes every press it sees, its own or not.
    router.include_router(build_nodes_router())
    router.include_routers(
        main_menu(), food_order(), counter(), order_status(), daily_special(), user_settings()
    )
    # Any other text outside a dialog opens the menu; dialogs see messages first.
    fallback = Router(name="demo-fallback")
    fallback.message.register(on_start, F.text)
    router.include_router(fallback)
    return router
