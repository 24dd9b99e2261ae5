"""What a chat shows now: the top dialog of its stack, for site code to ask before it acts.

::

    shown = background.current("default", user_id, chat_id)
    if shown is not None and shown.shows(OrderStatus):
        background.update("default", user_id, chat_id, {"order": order.pk})

It reads through the bot's FSM storage (aiogram's ``BaseStorage.get_data``), with the keys
aiogram_dialog uses for a stack and its contexts, so it answers for every storage
``BOTDIALOGS['STORAGE']`` can name (DjangoStorage, Redis, memory), and it takes no chat
lock: the answer is what was committed when it was read, and a user may change it a moment
later. A handler asks its own ``DialogManager`` instead: it also knows what the running
update changed and has not saved yet.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram_dialog.api.entities import DEFAULT_STACK_ID

from botdialogs.engine.sync import call_async
from botdialogs.storage.rows import CONTEXT_PREFIX, STACK_PREFIX

#: Reads of the stack when its top dialog closed between reading the stack and the dialog.
READ_TRIES = 3


@dataclass(frozen=True)
class CurrentDialog:
    """The dialog on top of a chat's stack: the one the user sees and presses buttons in."""

    #: ``"Group:state"``, as aiogram's ``State.state``.
    state: str
    #: The state's group, as ``StatesGroup.__full_group_name__``.
    group: str
    #: The dialog's ``dialog_data`` (a copy: changing it changes nothing stored).
    dialog_data: dict[str, Any]
    #: What the dialog was started with (``start(..., data=)``), None when nothing.
    start_data: Any
    #: aiogram_dialog's intent id of the dialog.
    intent_id: str
    #: aiogram_dialog's id of the stack (``""`` for a private chat's default stack).
    stack_id: str
    #: How many dialogs the stack has open (this one included).
    depth: int

    def shows(self, states: type[StatesGroup] | State | str) -> bool:
        """Whether the chat shows ``states``: a StatesGroup (any of its states), a State, or
        a ``"Group:state"`` name."""
        if isinstance(states, str):
            return self.state == states
        if isinstance(states, State):
            return self.state == states.state
        return self.group == states.__full_group_name__


def stack_key(
    bot_id: int,
    user_id: int,
    chat_id: int,
    *,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
) -> StorageKey:
    """The storage key of the stack aiogram_dialog keeps for ``user_id`` in ``chat_id``.

    As in aiogram_dialog 2.6 (``StorageProxy``): stacks and contexts are keyed by the chat
    (user id = chat id), and the default stack of a user in a group or a business chat is
    the user's own, ``<user_id>``.
    """
    stack_id = DEFAULT_STACK_ID if stack_id is None else stack_id
    private = user_id == chat_id and business_connection_id is None
    if stack_id == DEFAULT_STACK_ID and not private:
        stack_id = f"<{user_id}>"
    return StorageKey(
        bot_id=bot_id,
        chat_id=chat_id,
        user_id=chat_id,
        thread_id=thread_id,
        business_connection_id=business_connection_id,
        destiny=f"{STACK_PREFIX}{stack_id}",
    )


async def acurrent(
    bot: str,
    user_id: int,
    chat_id: int,
    *,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
) -> CurrentDialog | None:
    """The dialog chat ``chat_id`` of bot ``bot`` shows user ``user_id`` now; None when no
    dialog is open. The arguments are those of :func:`botdialogs.background.start`."""
    from botdialogs.engine.bots import bot_id, get_storage

    storage = get_storage()
    key = stack_key(
        bot_id(bot),
        user_id,
        chat_id,
        stack_id=stack_id,
        thread_id=thread_id,
        business_connection_id=business_connection_id,
    )
    seen: list[str] | None = None
    for _ in range(READ_TRIES):
        intents = list((await storage.get_data(key)).get("intents") or [])
        if not intents or intents == seen:
            # No dialog; or a stack whose top dialog is gone without the stack changing
            # (nothing a user can see: aiogram_dialog would not show it either).
            return None
        context = await storage.get_data(replace(key, destiny=f"{CONTEXT_PREFIX}{intents[-1]}"))
        if context:
            state = str(context.get("state") or "")
            return CurrentDialog(
                state=state,
                group=state.partition(":")[0],
                dialog_data=dict(context.get("dialog_data") or {}),
                start_data=context.get("start_data"),
                intent_id=intents[-1],
                stack_id=key.destiny.removeprefix(STACK_PREFIX),
                depth=len(intents),
            )
        # The top dialog closed between the two reads: read the stack again.
        seen = intents
    return None


def current(
    bot: str,
    user_id: int,
    chat_id: int,
    *,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
) -> CurrentDialog | None:
    """:func:`acurrent` for sync code (views, signals, Celery tasks)."""
    return call_async(
        acurrent,
        bot,
        user_id,
        chat_id,
        stack_id=stack_id,
        thread_id=thread_id,
        business_connection_id=business_connection_id,
    )
