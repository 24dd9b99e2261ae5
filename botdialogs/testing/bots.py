"""Small bots whose stored state tells what happened to them: the library's own tests and
benchmarks run them, and a site can run them to try its storage and transport settings
without its own dialogs. Name one as a bot's ``ROUTER``::

    BOTDIALOGS = {"BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}}}

- :func:`counter_router`: one window "Count: <n>" with a "+1" button (the count lives in
  ``dialog_data``) and a "boom" button that changes everything and then fails, so nothing
  of it may be stored.
- :func:`steps_router`: every text message "step <n>" appends n to the chat's FSM data
  (``{"steps": [...]}``) in the update's own transaction: an update applied twice shows n
  twice, a lost one is missing. It makes no Bot API call.
"""

from __future__ import annotations

from typing import Any

from aiogram import F, Router
from aiogram.filters import CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, StartMode, Window
from aiogram_dialog.widgets.kbd import Button
from aiogram_dialog.widgets.text import Const, Format


class Counter(StatesGroup):
    """The counter dialog's states."""

    main = State()
    other = State()


class Failing(Exception):
    """Raised on purpose by the "boom" button."""


async def increment(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """ "+1": count the press in the dialog's data."""
    manager.dialog_data["count"] = manager.dialog_data.get("count", 0) + 1


async def explode(callback: CallbackQuery, button: Button, manager: DialogManager) -> None:
    """ "boom": raise :class:`Failing` after changing the data and the stack."""
    # Change everything an update can change, then fail: none of it may be stored.
    manager.dialog_data["count"] = 999
    await manager.start(Counter.other)
    raise Failing("handler failed half-way")


async def getter(dialog_manager: DialogManager, **kwargs: Any) -> dict[str, Any]:
    """The window's data: the count so far."""
    return {"count": dialog_manager.dialog_data.get("count", 0)}


async def on_start(message: Message, dialog_manager: DialogManager) -> None:
    """``/start``: the counter afresh."""
    await dialog_manager.start(Counter.main, mode=StartMode.RESET_STACK)


def counter_router() -> Router:
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


async def append_step(state: FSMContext, number: int) -> None:
    """Append ``number`` to the chat's recorded steps."""
    data = await state.get_data()
    await state.update_data(steps=[*data.get("steps", []), number])


def steps_router() -> Router:
    """A router that records "step <n>" messages (a new one each call)."""
    router = Router(name="steps")

    @router.message(F.text.startswith("step "))
    async def record_step(message: Message, state: FSMContext) -> None:
        """Append the message's step number."""
        await append_step(state, int((message.text or "").split()[1]))

    return router
