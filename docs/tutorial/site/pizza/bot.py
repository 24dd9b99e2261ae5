from typing import Any

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Button, SwitchTo
from aiogram_dialog.widgets.text import Const, Format
from asgiref.sync import sync_to_async
from pizza.feedback import PREFIX, ask_for_feedback, feedback
from pizza.models import Order

from botdialogs import timers


class Pizza(StatesGroup):
    menu = State()
    confirm = State()


async def menu_text(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    data = dialog_manager.dialog_data
    return {
        "name": dialog_manager.start_data["name"],
        "order": data.get("order", "none yet"),
        "status": data.get("status", "-"),
        "note": data.get("note", ""),
    }


async def place_order(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    chat_id = callback.message.chat.id if callback.message else callback.from_user.id
    order = await sync_to_async(Order.objects.create)(
        telegram_user_id=callback.from_user.id, telegram_chat_id=chat_id
    )
    manager.dialog_data.update(order=order.pk, status=order.status)
    # In 2 seconds the dialog learns the pizza is in the oven: a dialog timer, stored with
    # this update's state and fired once.
    await timers.aschedule(
        "default",
        callback.from_user.id,
        chat_id,
        "update",
        after=2,
        data={"note": "Your pizza is in the oven."},
    )
    await manager.switch_to(Pizza.menu)


async def start(message: Message, dialog_manager: DialogManager) -> None:
    name = message.from_user.first_name if message.from_user else "there"
    await dialog_manager.start(Pizza.menu, data={"name": name}, mode=StartMode.RESET_STACK)


def build_router() -> Router:
    """The bot's router, new on each call (a Router can be attached only once)."""
    router = Router(name="pizza")
    router.message.register(start, CommandStart())
    # Nodes before the dialogs: an open dialog would take every press.
    router.message.register(ask_for_feedback, Command("feedback"))
    router.callback_query.register(feedback.route, F.data.startswith(PREFIX))
    router.include_router(
        Dialog(
            Window(
                Format("Hello, {name}! Order: {order}, status: {status}. {note}"),
                SwitchTo(Const("Order a pizza"), id="order", state=Pizza.confirm),
                state=Pizza.menu,
                getter=menu_text,
            ),
            Window(
                Const("One margherita?"),
                Button(Const("Yes, please"), id="yes", on_click=place_order),
                SwitchTo(Const("Back"), id="back", state=Pizza.menu),
                state=Pizza.confirm,
            ),
        )
    )
    return router
