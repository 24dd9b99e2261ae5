"""Start, switch, update and close users' dialogs from anywhere on the site.

Sync code (views, signals, admin actions, Celery tasks)::

    from botdialogs import background

    background.start("default", user_id, chat_id, OrderStatus.detail, data={"order": 7})
    background.update("default", user_id, chat_id, data={"status": "cooking"})

Each call builds a JSON action, checks it, and delivers it after the surrounding
transaction commits (nothing for a rolled-back one), through ``BOTDIALOGS['BACKGROUND']``
(in-process, Celery or the channel layer). It returns the action id.

Async code takes aiogram_dialog's manager itself::

    manager = background.bg_manager("default", user_id, chat_id)
    await manager.update({"n": 1})
    async with manager.fg() as dialog_manager:
        ...

Site users: :func:`link_site_user` ties a Telegram user to a site account,
:func:`for_site_user` finds their chats and :func:`update_for_user` updates all of them.
"""

from __future__ import annotations

from typing import Any

from aiogram.fsm.state import State
from aiogram_dialog import ShowMode, StartMode

from botdialogs.background.actions import build_action, perform, resolve_state, validate_action
from botdialogs.background.delivery import deliver, send
from botdialogs.background.manager import BackgroundManager, BackgroundManagerFactory, bg_manager
from botdialogs.background.site_users import (
    for_site_user,
    link_site_user,
    link_token,
    update_for_user,
    user_for_link_token,
)

__all__ = [
    "BackgroundManager",
    "BackgroundManagerFactory",
    "bg_manager",
    "build_action",
    "deliver",
    "done",
    "for_site_user",
    "link_site_user",
    "link_token",
    "perform",
    "resolve_state",
    "send",
    "start",
    "switch_to",
    "update",
    "update_for_user",
    "user_for_link_token",
    "validate_action",
]


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
