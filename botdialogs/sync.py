"""The one place where sync code (views, signals, Celery tasks, commands) enters async code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import async_to_sync

from botdialogs.bots import bot_scope
from botdialogs.exceptions import NotInAsyncContext

P = ParamSpec("P")
T = TypeVar("T")


def run_async(function: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``function(*args, **kwargs)`` to completion from sync code and return its result.

    Bots used inside are opened for this call and closed at its end: the loop asgiref runs
    it on may not outlive the call. Calling this from a running event loop is a mistake (it
    would block the loop), and raises :class:`NotInAsyncContext`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise NotInAsyncContext(
            f"run_async({getattr(function, '__name__', function)!r}) called from async code: "
            "await the coroutine instead"
        )

    async def scoped() -> T:
        async with bot_scope():
            return await function(*args, **kwargs)

    return async_to_sync(scoped)()
