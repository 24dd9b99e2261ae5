"""aiogram_dialog's BgManager for async code, made safe to await on short-lived loops.

aiogram_dialog sends a background event through the Dispatcher in a task it does not await
(``call_soon`` + ``create_task``). Inside an update handler that is right: the event needs the
chat lock the handler holds, so it must run after the handler. Anywhere else (a Celery task
on a loop that ends with the call, a Channels consumer, a view) :class:`BackgroundManager`
runs the event in a new task *and awaits it*: the work is done (stack written, Bot API
called) when the call returns, errors reach the caller, and the new task has its own
identity for chat locks and the unit of work.

``fg()`` never hangs: it waits at most ``FG_TIMEOUT`` seconds for the dialog to take the
event (:class:`BackgroundTimeout`), and fails at once with :class:`BackgroundNotHandled`
when the event was processed without reaching a dialog (access denied, an error).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiogram import Bot
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram_dialog.api.entities import DialogAction, DialogUpdate, DialogUpdateEvent
from aiogram_dialog.api.entities.update_event import DialogFgEvent
from aiogram_dialog.api.protocols import DialogManager, UnsetId
from aiogram_dialog.manager.bg_manager import BgManager, BgManagerFactoryImpl

from botdialogs.conf import get_settings
from botdialogs.engine.middleware import CLAIM
from botdialogs.engine.update_context import handling_update
from botdialogs.exceptions import BackgroundNotHandled, BackgroundTimeout
from botdialogs.storage import Claim

logger = logging.getLogger("botdialogs.background")

#: Events scheduled to run after the update that sent them (held until they finish).
_after_update: set[asyncio.Task[Any]] = set()


class BackgroundManager(BgManager):
    """aiogram_dialog's BgManager that finishes its work when awaited outside a handler.

    ``claim`` (set by :func:`bg_manager`; a background action's or a timer's) rides in the
    data of every event this manager sends, to the FSM middleware, whose unit of work takes
    it and commits it with the chat's state. Managers made with :meth:`bg` carry none.
    """

    claim: Claim | None = None

    @classmethod
    def _from(cls, manager: BgManager) -> BackgroundManager:
        context = manager._event_context
        return cls(
            user=context.user,
            chat=context.chat,
            bot=context.bot,
            router=manager._router,
            intent_id=manager.intent_id,
            stack_id=manager.stack_id,
            thread_id=context.thread_id,
            business_connection_id=context.business_connection_id,
            load=manager.load,
        )

    def bg(
        self,
        user_id: int | None = None,
        chat_id: int | None = None,
        stack_id: str | None = None,
        # aiogram_dialog's protocol says int, its BgManager str; Telegram's is an int.
        thread_id: int | UnsetId | None = UnsetId.UNSET,  # type: ignore[override]
        business_connection_id: str | UnsetId | None = UnsetId.UNSET,
        load: bool = False,
    ) -> BackgroundManager:
        """Like aiogram_dialog's, but the new manager is a BackgroundManager too."""
        manager = super().bg(
            user_id=user_id,
            chat_id=chat_id,
            stack_id=stack_id,
            thread_id=thread_id,  # type: ignore[arg-type]  # aiogram_dialog types it str
            business_connection_id=business_connection_id,
            load=load,
        )
        assert isinstance(manager, BgManager)
        return self._from(manager)

    def _update(self, event: DialogUpdateEvent) -> DialogUpdate:
        bot = self._event_context.bot
        return DialogUpdate(aiogd_update=event.as_(bot)).as_(bot)

    def _spawn(self, update: DialogUpdate) -> asyncio.Task[Any]:
        """Process ``update`` in a new task (own identity for locks and the unit of work)."""
        bot = self._event_context.bot
        dispatcher = self._updater.dp
        event = update.event
        coroutine = dispatcher.propagate_event(
            update_type="update",
            event=update,
            bot=bot,
            event_from_user=event.from_user,
            event_chat=event.chat,
            event_thread_id=event.thread_id,
            **dispatcher.workflow_data,
            **({CLAIM: self.claim} if self.claim is not None else {}),
        )
        return asyncio.get_running_loop().create_task(coroutine, context=contextvars.copy_context())

    def _spawn_after_update(self, update: DialogUpdate) -> None:
        task = self._spawn(update)
        _after_update.add(task)
        task.add_done_callback(_after_update.discard)

    async def _notify(self, event: DialogUpdateEvent) -> None:
        update = self._update(event)
        if handling_update():
            # Our own update holds the chat lock: the event runs after it (aiogram_dialog's way).
            loop = asyncio.get_running_loop()
            loop.call_soon(self._spawn_after_update, update, context=contextvars.copy_context())
            return
        result = await self._spawn(update)
        if result is UNHANDLED:
            logger.info(
                "Background %s for chat %s was not handled (access denied?)",
                event.action.value,
                self._event_context.chat.id,
            )

    @asynccontextmanager
    async def fg(self) -> AsyncIterator[DialogManager]:
        """The dialog manager of the chat's current dialog, for use in this block.

        The chat stays locked while the block runs; changes are saved when it ends.
        Raises BackgroundTimeout when the dialog does not take the event within FG_TIMEOUT
        (for instance the chat is busy, or this is a handler of the same chat), and
        BackgroundNotHandled when the event was processed without reaching a dialog.
        """
        loop = asyncio.get_running_loop()
        event = DialogFgEvent(
            data=None,
            action=DialogAction.FG,
            entered=loop.create_future(),
            exited=loop.create_future(),
            **self._base_event_params(),
        )
        task = self._spawn(self._update(event))
        manager = await self._entered(event, task)
        try:
            yield manager
        except BaseException as error:
            if isinstance(error, Exception):
                event.exited.set_exception(error)
            else:
                event.exited.cancel()
            await _finish(task, error)
            raise
        event.exited.set_result(None)
        await task

    async def _entered(self, event: DialogFgEvent, task: asyncio.Task[Any]) -> DialogManager:
        timeout = get_settings().fg_timeout
        await asyncio.wait({event.entered, task}, timeout=timeout, return_when="FIRST_COMPLETED")
        if event.entered.done():
            return event.entered.result()
        chat_id = self._event_context.chat.id
        if task.done():
            error = None if task.cancelled() else task.exception()
            message = f"fg() event for chat {chat_id} reached no dialog"
            if error is not None:
                raise BackgroundNotHandled(f"{message}: {error!r}") from error
            raise BackgroundNotHandled(f"{message} (access denied, or no handler took it)")
        event.entered.cancel()
        task.cancel()
        await asyncio.wait({task})
        raise BackgroundTimeout(
            f"fg() event for chat {chat_id} was not handled within {timeout:g}s "
            "(chat busy, or called from a handler of the same chat?)"
        )


async def _finish(task: asyncio.Task[Any], error: BaseException) -> None:
    """Let the processing task end after the fg() block raised ``error``."""
    await asyncio.wait({task})
    if task.cancelled():
        return
    task_error = task.exception()
    if task_error is not None and task_error is not error:
        logger.error("fg() processing failed after the block raised", exc_info=task_error)


class BackgroundManagerFactory(BgManagerFactoryImpl):
    """aiogram_dialog's BgManagerFactory, handing out :class:`BackgroundManager`."""

    def bg(
        self,
        bot: Bot,
        user_id: int,
        chat_id: int,
        stack_id: str | None = None,
        thread_id: int | None = None,
        business_connection_id: str | None = None,
        load: bool = False,
    ) -> BackgroundManager:
        """A manager for the chat's stack ``stack_id`` (default stack when None)."""
        manager = super().bg(
            bot,
            user_id,
            chat_id,
            stack_id=stack_id,
            thread_id=thread_id,
            business_connection_id=business_connection_id,
            load=load,
        )
        assert isinstance(manager, BgManager)
        return BackgroundManager._from(manager)


def bg_manager(
    bot_name: str,
    user_id: int,
    chat_id: int,
    *,
    stack_id: str | None = None,
    thread_id: int | None = None,
    business_connection_id: str | None = None,
    load: bool = False,
    bot: Bot | None = None,
    claim: Claim | None = None,
) -> BackgroundManager:
    """aiogram_dialog's background manager of one chat of bot ``bot_name``, for async code.

    Every BgManager method works: ``start``, ``switch_to``, ``update``, ``done``, ``bg`` and
    ``fg``. ``bot`` defaults to the bot of the running loop
    (:func:`botdialogs.engine.bots.get_bot`). ``claim`` commits with the state the
    manager's events change (:mod:`botdialogs.background.performing` passes the action's).
    """
    from botdialogs.engine.bots import get_bot, get_dispatcher

    dispatcher = get_dispatcher(bot_name)
    factory = BackgroundManagerFactory(dispatcher)
    manager = factory.bg(
        bot or get_bot(bot_name),
        user_id,
        chat_id,
        stack_id=stack_id,
        thread_id=thread_id,
        business_connection_id=business_connection_id,
        load=load,
    )
    manager.claim = claim
    return manager
