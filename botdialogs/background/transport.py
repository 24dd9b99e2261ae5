"""The background transport: how an action gets from sync code to where it is performed.

:func:`send` hands it over after the surrounding transaction commits, :func:`deliver` now.
``BOTDIALOGS['BACKGROUND']`` picks the transport:

- ``"inline"`` (the embedded default): performed in this process, before :func:`send`
  returns (or, inside a transaction, right after it commits);
- ``"celery"``: the task ``botdialogs.perform_background_action`` (in-process when Celery
  runs eagerly, i.e. no broker is configured);
- ``"channels"``: a message on the channel ``botdialogs`` for ``manage.py runworker
  botdialogs`` (:mod:`botdialogs.consumers`).

Sync code reached from an update handler (a ``post_save`` fired by a save in a handler)
must not wait for an in-process action: it needs the chat lock the handler holds. There the
action is scheduled on the handler's loop and runs when the update is done.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from botdialogs.background.actions import describe
from botdialogs.background.performing import REJECTED, aperform_recorded
from botdialogs.conf import get_settings
from botdialogs.engine.sync import call_async, refuse_in_async
from botdialogs.engine.update_context import update_in_progress
from botdialogs.exceptions import BadBackgroundAction, is_transient

logger = logging.getLogger("botdialogs.background")

#: The channel ``manage.py runworker botdialogs`` listens on, and its message type.
CHANNEL_NAME = "botdialogs"
MESSAGE_TYPE = "background.action"

#: Seconds before attempt 2, 3, … of an action that failed for a passing reason (database,
#: network) where nothing redelivers it (:func:`perform_or_retry`); then it is given up.
RETRY_DELAYS = (1.0, 5.0, 15.0, 60.0, 300.0)

_scheduled: set[asyncio.Task[Any]] = set()


def send(action: dict[str, Any], *, using: str = DEFAULT_DB_ALIAS) -> str:
    """Deliver ``action`` once the current transaction of ``using`` commits; return its id.

    Outside a transaction it is delivered now. A rolled-back transaction sends nothing.
    """
    refuse_in_async(
        "botdialogs.background.start/update/... are for sync code; in async code use "
        "botdialogs.background.bg_manager(...) and await its methods"
    )
    in_transaction = connections[using].in_atomic_block
    transaction.on_commit(functools.partial(deliver, action), using=using, robust=in_transaction)
    return str(action["id"])


def deliver(action: dict[str, Any]) -> None:
    """Hand ``action`` to the configured transport now (no transaction handling)."""
    transport = get_settings().background
    if transport == "celery":
        from botdialogs import task_queue

        if task_queue.runs_in_process() and update_in_progress():
            _deliver_inline(action)
        else:
            task_queue.enqueue(task_queue.PERFORM_BACKGROUND_ACTION, action)
    elif transport == "channels":
        call_async(send_to_channel, action)
    else:
        _deliver_inline(action)


async def send_to_channel(action: dict[str, Any], attempt: int = 0) -> None:
    """Put ``action`` on the ``botdialogs`` channel of the default channel layer.

    ``attempt`` counts the tries before this one (:func:`perform_or_retry`).
    """
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        raise BadBackgroundAction("BACKGROUND='channels' needs CHANNEL_LAYERS configured")
    message: dict[str, Any] = {"type": MESSAGE_TYPE, "action": action}
    if attempt:
        message["attempt"] = attempt
    await layer.send(CHANNEL_NAME, message)


async def perform_or_retry(
    action: Any, attempt: int, again: Callable[[int], Awaitable[None]]
) -> str | None:
    """Perform ``action``; after a passing failure, ``again(attempt + 1)`` after a backoff.

    For the deliveries that nobody redelivers: the channel layer's (``again`` sends the
    action to the channel once more, for any worker) and an action scheduled to run after
    an update (``again`` performs it here). Celery retries its own task instead. Returns the
    outcome, or None when the attempt failed; a failure for good, or after the last of
    :data:`RETRY_DELAYS`, is logged, and the action's row says so in the admin.
    """
    try:
        return await aperform_recorded(action)
    except Exception as error:
        if not is_transient(error) or attempt >= len(RETRY_DELAYS):
            logger.exception("Background action failed: %s", describe(action))
            return None
        delay = RETRY_DELAYS[attempt]
        logger.warning("Background action %s retried in %ss: %r", describe(action), delay, error)
        task = asyncio.get_running_loop().create_task(_after(delay, again(attempt + 1)))
        _scheduled.add(task)
        task.add_done_callback(_scheduled.discard)
        return None


async def _after(delay: float, attempt: Awaitable[None]) -> None:
    # The backoff itself (not a synchronisation): a database that is down stays down a while.
    await asyncio.sleep(delay)
    await attempt


def _deliver_inline(action: dict[str, Any]) -> None:
    # Through the action's claim, like a worker: its BackgroundAction row commits with the
    # state (in the unit's first round trip), so inline actions are listed in the admin too.
    if update_in_progress():
        call_async(_schedule, action)
    else:
        call_async(_perform_inline, action)


async def _perform_inline(action: dict[str, Any]) -> None:
    if await aperform_recorded(action) == REJECTED:
        # The caller waits for an inline action: tell it, as when it ran unrecorded.
        raise BadBackgroundAction(
            f"Background action rejected (see the log and the admin's background actions): "
            f"{describe(action)}"
        )


async def _schedule(action: dict[str, Any]) -> None:
    # A fresh context: the task is not part of the handler's update, nor of a bot scope
    # that ends with this call; it waits for the chat lock and runs after the update.
    task = asyncio.get_running_loop().create_task(
        _perform_logged(action), context=contextvars.Context()
    )
    _scheduled.add(task)
    task.add_done_callback(_scheduled.discard)


async def _perform_logged(action: dict[str, Any], attempt: int = 0) -> None:
    await perform_or_retry(action, attempt, functools.partial(_perform_logged, action))
