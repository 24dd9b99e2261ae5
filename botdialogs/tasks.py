"""Celery tasks of botdialogs: thin wrappers that cross into async and call one function."""

from __future__ import annotations

from typing import Any

from botdialogs.exceptions import MissingExtra

try:
    from celery import shared_task
    from celery.signals import worker_shutting_down
except ImportError as error:
    raise MissingExtra("celery", "celery", "botdialogs.tasks") from error

from botdialogs.engine.sync import call_async

#: Seconds between tries of a queued update whose database or network failed; then given up.
UPDATE_RETRY_DELAYS = (1, 2, 5, 10, 30, 60, 120, 300)


@shared_task(
    name="botdialogs.process_update",
    bind=True,
    ignore_result=True,
    # Acknowledged only when done: a worker killed mid-task leaves the message to be
    # delivered again (at once when the pool sees its child die, else after the broker's
    # visibility timeout); the update's claim makes the second run a no-op if the first
    # one committed.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=len(UPDATE_RETRY_DELAYS),
)
def process_update(self: Any, bot_name: str, raw_update: dict[str, Any]) -> None:
    """Handle one queued webhook update exactly once (its update_id commits with its state)."""
    from botdialogs.exceptions import is_transient
    from botdialogs.http import webhook

    try:
        call_async(webhook.process_update, bot_name, raw_update)
    except Exception as error:
        if not is_transient(error) or self.request.retries >= len(UPDATE_RETRY_DELAYS):
            raise
        raise self.retry(exc=error, countdown=UPDATE_RETRY_DELAYS[self.request.retries]) from error


# -- background actions and broadcasts (botdialogs.background) -------------------------------

#: Errors worth another try: Telegram flood control/5xx/network, and the database.
RETRY_DELAYS = (1, 5, 15, 60, 300)


def _retryable(error: BaseException) -> bool:
    from botdialogs.exceptions import is_transient

    return is_transient(error)


@shared_task(
    name="botdialogs.perform_background_action",
    bind=True,
    ignore_result=True,
    # As process_update: a killed worker's action runs again; its claim keeps it once.
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=len(RETRY_DELAYS),
)
def perform_background_action(self: Any, action: dict[str, Any]) -> str:
    """Perform one background action (a JSON dict) at most once; retried on passing errors."""
    from aiogram.exceptions import TelegramRetryAfter

    from botdialogs.background.performing import perform_recorded

    try:
        return perform_recorded(action)
    except Exception as error:
        if not _retryable(error) or self.request.retries >= len(RETRY_DELAYS):
            raise
        delay = RETRY_DELAYS[self.request.retries]
        if isinstance(error, TelegramRetryAfter):
            delay = max(delay, error.retry_after)
        raise self.retry(exc=error, countdown=delay) from error


@shared_task(name="botdialogs.run_broadcast", ignore_result=True, acks_late=True)
def run_broadcast(broadcast_id: int) -> None:
    """Send a :class:`~botdialogs.models.Broadcast` (resumes where a previous run stopped)."""
    from botdialogs.background import broadcast

    broadcast.run(broadcast_id)


@shared_task(name="botdialogs.cleanup_expired", ignore_result=True)
def cleanup_expired() -> dict[str, int]:
    """Delete expired storage rows and webhook update ids (schedule it with Celery beat)."""
    from botdialogs.storage.cleanup import delete_expired

    return delete_expired()


# -- dialog timers (botdialogs.timers) -------------------------------------------------------


#: Seconds between two beat ticks of ``botdialogs.fire_due_timers`` (the demo's schedule).
TIMER_TICK = 1.0


@shared_task(name="botdialogs.fire_due_timers", ignore_result=True)
def fire_due_timers() -> dict[str, int]:
    """Claim and fire due dialog timers (Celery beat runs it about every second).

    A run that finds more due than one batch queues one more run, so an idle worker helps
    with a burst instead of waiting for the next tick. A tick that this worker's cached next
    due time (``botdialogs.timers.wakeups``) says is quiet asks the database nothing.
    """
    from botdialogs.timers import fire_due
    from botdialogs.timers.wakeups import watching

    if watching().quiet_for(TIMER_TICK):
        return {"claimed": 0}

    def ask_for_help() -> None:
        fire_due_timers.apply_async(expires=5)

    report = call_async(fire_due, on_backlog=ask_for_help)
    return {"claimed": report.claimed, **report.outcomes}


@worker_shutting_down.connect
def _stop_waiting_for_timers(**_kwargs: Any) -> None:
    """A worker told to stop ends a timer run that waits for a coming timer at once."""
    from botdialogs.timers.firing import stop_waiting
    from botdialogs.timers.wakeups import stop_watching

    stop_waiting()
    stop_watching()
