"""Queueing botdialogs' Celery tasks by name: domain code never imports :mod:`botdialogs.tasks`.

``botdialogs.tasks`` is a leaf (thin entry points that import the domain); the domain
reaches its tasks through :func:`enqueue`, as channels' consumers are reached by channel name.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

from botdialogs.exceptions import MissingExtra

#: The tasks botdialogs queues, by name (defined in botdialogs.tasks).
PROCESS_UPDATE = "botdialogs.process_update"
PERFORM_BACKGROUND_ACTION = "botdialogs.perform_background_action"
RUN_BROADCAST = "botdialogs.run_broadcast"


def _task(name: str) -> Any:
    try:
        from celery import current_app
    except ImportError as error:
        raise MissingExtra("celery", "celery", f"the Celery task {name}") from error

    # botdialogs' AppConfig.ready() imports botdialogs.tasks, so its tasks are registered
    # whether or not the site's Celery app autodiscovers Django apps' tasks.
    return current_app.tasks[name]


def enqueue(name: str, *args: Any) -> None:
    """Queue the task ``name`` (run it in this process when Celery is eager)."""
    _task(name).delay(*args)


def runs_in_process() -> bool:
    """Whether Celery runs tasks eagerly here (no broker: the embedded defaults).

    Without Celery installed nothing can run elsewhere either: this process does the work.
    """
    if find_spec("celery") is None:
        return True
    return bool(_task(PERFORM_BACKGROUND_ACTION).app.conf.task_always_eager)
