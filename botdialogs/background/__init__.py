"""Start, switch, update and close users' dialogs from anywhere on the site (public names).

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

What a chat shows now (sync and async), for site code that acts on it::

    shown = background.current("default", user_id, chat_id)  # or await acurrent(...)
    if shown is not None and shown.shows(OrderStatus):
        ...

(:mod:`.current_dialog`: read through the bot's FSM storage, without the chat lock.)

Site users: :func:`link_site_user` ties a Telegram user to a site account,
:func:`for_site_user` finds their chats and :func:`update_for_user` updates all of them.

Owns: actions (:mod:`.actions`), their transport (:mod:`.transport`), performing them once
(:mod:`.performing`, with their claim, :mod:`.claims`), aiogram_dialog's manager for async
code (:mod:`.manager`), the sync calls (:mod:`.from_sync`), site users
(:mod:`.site_users`) and broadcasts (:mod:`.broadcast`).
May import: :mod:`botdialogs.engine`, :mod:`botdialogs.storage`, :mod:`botdialogs.task_queue`
and the core modules; never ``botdialogs.http``, ``.admin`` or the optional apps.
"""

from __future__ import annotations

from botdialogs.background.actions import build_action, perform, resolve_state, validate_action
from botdialogs.background.current_dialog import CurrentDialog, acurrent, current
from botdialogs.background.from_sync import done, start, switch_to, update
from botdialogs.background.manager import BackgroundManager, BackgroundManagerFactory, bg_manager
from botdialogs.background.site_users import (
    for_site_user,
    link_site_user,
    link_token,
    update_for_user,
    user_for_link_token,
)
from botdialogs.background.transport import deliver, send

__all__ = [
    "BackgroundManager",
    "BackgroundManagerFactory",
    "CurrentDialog",
    "acurrent",
    "bg_manager",
    "build_action",
    "current",
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
