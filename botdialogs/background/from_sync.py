"""The four calls sync code makes: start, switch_to, update and done, for one chat.

Each builds a JSON action (:mod:`.actions`), checks it where it is made, and sends it after
the surrounding transaction commits (:mod:`.transport`); each returns the action id. The
signatures are spelled out, with aiogram_dialog's ``bg()`` parameters, for readers and type
checkers.
"""

from __future__ import annotations

from typing import Any

from aiogram.fsm.state import State
from aiogram_dialog import ShowMode, StartMode

from botdialogs.background.actions import build_action
from botdialogs.background.transport import send


def start(
    bot: str,
    user_id: int,
    chat_id: int,
    state: State | str,
    data: Any = None,
    *,
    mode: StartMode | str = StartMode.NORMAL,
    show_mode: ShowMode | str | None = None,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
) -> str:
    """Start the dialog of ``state`` (a State or ``"Group:state"``) for one chat."""
    return send(
        build_action(
            "start",
            bot,
            user_id,
            chat_id,
            state=state,
            data=data,
            mode=mode,
            show_mode=show_mode,
            stack_id=stack_id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            load=load,
        )
    )


def switch_to(
    bot: str,
    user_id: int,
    chat_id: int,
    state: State | str,
    *,
    show_mode: ShowMode | str | None = None,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
) -> str:
    """Switch the chat's current dialog to ``state`` (of the same dialog)."""
    return send(
        build_action(
            "switch_to",
            bot,
            user_id,
            chat_id,
            state=state,
            show_mode=show_mode,
            stack_id=stack_id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            load=load,
        )
    )


def update(
    bot: str,
    user_id: int,
    chat_id: int,
    data: dict[str, Any] | None = None,
    *,
    show_mode: ShowMode | str | None = None,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
) -> str:
    """Merge ``data`` into the current dialog's ``dialog_data`` and show it again."""
    return send(
        build_action(
            "update",
            bot,
            user_id,
            chat_id,
            data=data,
            show_mode=show_mode,
            stack_id=stack_id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            load=load,
        )
    )


def done(
    bot: str,
    user_id: int,
    chat_id: int,
    result: Any = None,
    *,
    show_mode: ShowMode | str | None = None,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
) -> str:
    """Close the chat's current dialog with ``result`` (JSON) for the one below it."""
    return send(
        build_action(
            "done",
            bot,
            user_id,
            chat_id,
            result=result,
            show_mode=show_mode,
            stack_id=stack_id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            load=load,
        )
    )
