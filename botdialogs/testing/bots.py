"""A one-button counter dialog for storage and isolation tests."""

from __future__ import annotations

from typing import Any

from aiogram import Router
from aiogram.filters import CommandStart
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Button
from aiogram_dialog.widgets.text import Const, Format


class Counter(StatesGroup):
    main = State()
    other = State()


class Failing(Exception):
    """Raised on purpose by the "boom" button."""


async def increment(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    manager.dialog_data["count"] = manager.dialog_data.get("count", 0) + 1


async def explode(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    # Change everything an update can change, then fail: none of it may be stored.
    manager.dialog_data["count"] = 999
    await manager.start(Counter.other)
    raise Failing("handler failed half-way")


async def getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    return {"count": dialog_manager.dialog_data.get("count", 0)}


async def on_start(message: Message, dialog_manager: DialogManager) -> None:
    await dialog_manager.start(Counter.main, mode=StartMode.RESET_STACK)


def build_router() -> Router:
    """The counter bot's router (new each call)."""
    router = Router(name="counter")
    router.message.register(on_start, CommandStart())
    router.include_router(
        Dialog(
            Window(
                Format("Count: {count}"),
                Button(Const("+1"), id="inc", on_click=increment),
                Button(Const("boom"), id="boom", on_click=explode),
                state=Counter.main,
                getter=getter,
            ),
            Window(Const("other"), state=Counter.other),
        )
    )
    return router
