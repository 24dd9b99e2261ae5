"""Celery tasks of botdialogs: thin wrappers that cross into async and call one function."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from botdialogs.sync import run_async


@shared_task(name="botdialogs.process_update", ignore_result=True)
def process_update(bot_name: str, raw_update: dict[str, Any]) -> None:
    """Handle one queued webhook update (its update_id was taken by the webhook view)."""
    from botdialogs import webhook

    run_async(webhook.process_update, bot_name, raw_update)


# -- background actions and broadcasts (botdialogs.background, botdialogs.broadcast) --------

#: Errors worth another try: Telegram flood control/5xx/network, and the database.
RETRY_DELAYS = (1, 5, 15, 60, 300)


def _retryable(error: BaseException) -> bool:
    from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
    from django.db import DatabaseError

    return isinstance(
        error, TelegramNetworkError | TelegramRetryAfter | TelegramServerError | DatabaseError
    )


@shared_task(
    name="botdialogs.perform_background_action",
    bind=True,
    ignore_result=True,
    max_retries=len(RETRY_DELAYS),
)
def perform_background_action(self: Any, action: dict[str, Any]) -> str:
    """Perform one background action (a JSON dict) at most once; retried on passing errors."""
    from aiogram.exceptions import TelegramRetryAfter

    from botdialogs.background.records import perform_recorded

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
    from botdialogs import broadcast

    broadcast.run(broadcast_id)


@shared_task(name="botdialogs.cleanup_expired", ignore_result=True)
def cleanup_expired() -> dict[str, int]:
    """Delete expired storage rows and webhook update ids (schedule it with Celery beat)."""
    from botdialogs.cleanup import delete_expired

    return delete_expired()
