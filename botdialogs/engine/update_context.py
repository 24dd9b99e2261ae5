"""Which task is handling an update: read by background code that must not wait for itself.

The FSM middleware marks the task that holds a chat's lock (:func:`handling`); background
actions started from inside that update (by a handler, or by a signal its save fired) run
after it instead of waiting for a lock their own update holds.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# The task handling an update, set while the chat is locked (read by botdialogs.background).
_update_task: contextvars.ContextVar[asyncio.Task[Any] | None] = contextvars.ContextVar(
    "botdialogs_update_task", default=None
)


def handling_update() -> bool:
    """True when the running task is handling an update and holds its chat's lock.

    Background actions started here must not wait for their own processing: it needs the
    chat lock this task holds until the update ends (see botdialogs.background).
    """
    task = _update_task.get()
    return task is not None and task is asyncio.current_task()


def update_in_progress() -> bool:
    """True when this call chain began in a handler that is still running.

    Also true in sync code a handler reached through ``sync_to_async`` (a signal fired by a
    save in a handler): asgiref carries context variables across, but not the task.
    """
    task = _update_task.get()
    return task is not None and not task.done()


@contextmanager
def handling() -> Iterator[None]:
    """Mark the running task as the one handling its chat's update, for the block."""
    marker = _update_task.set(asyncio.current_task())
    try:
        yield
    finally:
        _update_task.reset(marker)
