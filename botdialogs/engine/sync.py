"""The one place where sync code (views, signals, Celery tasks, commands) enters async code."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import SyncToAsync, async_to_sync

from botdialogs.engine.bots import bot_scope
from botdialogs.exceptions import NotInAsyncContext
from botdialogs.storage.pool_tasks import in_pool_context

logger = logging.getLogger("botdialogs")
#: Seconds a sync call waits at its end for tasks it spawned (its loop ends with it).
SPAWNED_TASKS_TIMEOUT = 30.0

P = ParamSpec("P")
T = TypeVar("T")


def refuse_in_async(message: str) -> None:
    """Raise NotInAsyncContext(message) when called with an event loop running: sync helpers
    would block it."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise NotInAsyncContext(message)


def call_async(function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``function(*args, **kwargs)`` to completion from sync code and return its result.

    Bots used inside are opened for this call and closed at its end: the loop asgiref runs
    it on may not outlive the call. Calling this from a running event loop is a mistake (it
    would block the loop), and raises :class:`NotInAsyncContext`.
    """
    refuse_in_async(
        f"call_async({getattr(function, '__name__', function)!r}) called from async code: "
        "await the coroutine instead"
    )

    # asgiref runs the call on the loop of an enclosing async caller if there is one (a sync
    # view under ASGI), else on a new loop that ends with the call.
    outer_loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    private_loop = outer_loop is None or not outer_loop.is_running()

    async def scoped() -> T:
        async with bot_scope():
            if not private_loop:
                return await function(*args, **kwargs)
            with _spawned_tasks() as spawned:
                result = await function(*args, **kwargs)
                await _finish_spawned_tasks(spawned)
            return result

    return async_to_sync(scoped)()


@contextmanager
def _spawned_tasks() -> Iterator[set[asyncio.Task[Any]]]:
    """The unfinished tasks started on this (private) loop while the block runs.

    Tasks a connection pool starts are left out: they are the loop's, and live until the
    pool closes with the loop's other resources (when bot_scope ends, after the wait).
    """
    loop = asyncio.get_running_loop()
    spawned: set[asyncio.Task[Any]] = set()
    previous = loop.get_task_factory()

    def record(
        loop: asyncio.AbstractEventLoop,
        coroutine: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
        **options: Any,
    ) -> asyncio.Task[Any]:
        task = asyncio.Task(coroutine, loop=loop, **options)
        context: contextvars.Context | None = options.get("context")
        if not in_pool_context(context):
            # A strong reference too: a fire-and-forget task is not collected before it ends.
            spawned.add(task)
            task.add_done_callback(spawned.discard)
        return task

    loop.set_task_factory(record)
    try:
        yield spawned
    finally:
        loop.set_task_factory(previous)


async def _finish_spawned_tasks(spawned: set[asyncio.Task[Any]]) -> None:
    """Wait for tasks the call left running (aiogram_dialog's fire-and-forget background
    events, started from a handler): on a private loop they would die with it."""
    deadline = asyncio.get_running_loop().time() + SPAWNED_TASKS_TIMEOUT
    while True:
        # aiogram_dialog starts its tasks from call_soon callbacks: let those run first.
        await asyncio.sleep(0)
        pending = [task for task in spawned if not task.done()]
        if not pending:
            return
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            logger.warning(
                "Cancelling %d background tasks still running: %s",
                len(pending),
                ", ".join(task.get_name() for task in pending),
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            return
        # A finished task may have started others: look again until none is left.
        await asyncio.wait(pending, timeout=remaining)
