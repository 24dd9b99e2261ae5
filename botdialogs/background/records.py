"""Performing queued actions exactly once: each action id is recorded in
:class:`~botdialogs.models.BackgroundAction`, like the webhook records update ids.

A redelivered or retried action that already succeeded is skipped; one that failed for good
(:class:`BadBackgroundAction`: unknown state, bad shape) is logged and never retried; one
that failed for a passing reason (network, Telegram 5xx/429, database) raises for the caller
(Celery task, consumer) to retry.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db.models import F
from django.utils import timezone

from botdialogs.background.actions import describe, validate_action
from botdialogs.exceptions import BadBackgroundAction

logger = logging.getLogger("botdialogs.background")

#: A "running" record older than this is taken to be from a worker that died.
STALE_AFTER = timedelta(minutes=5)

PERFORMED = "performed"
DUPLICATE = "duplicate"
REJECTED = "rejected"


def claim(action: dict[str, Any], broadcast_id: int | None = None) -> bool:
    """Record ``action`` as running; False when it is done, rejected or running elsewhere."""
    from botdialogs.models import BackgroundAction

    now = timezone.now()
    record, created = BackgroundAction.objects.get_or_create(
        action_id=action["id"],
        defaults={
            "bot_name": str(action.get("bot", ""))[:64],
            "action": str(action.get("action", ""))[:16],
            "chat_id": action.get("chat_id") if isinstance(action.get("chat_id"), int) else 0,
            "user_id": action.get("user_id") if isinstance(action.get("user_id"), int) else 0,
            "payload": action,
            "status": BackgroundAction.Status.RUNNING,
            "attempts": 1,
            "started_at": now,
            "broadcast_id": broadcast_id,
        },
    )
    if created:
        return True
    if record.status in (BackgroundAction.Status.DONE, BackgroundAction.Status.REJECTED):
        return False
    if record.status == BackgroundAction.Status.RUNNING and record.started_at > now - STALE_AFTER:
        return False
    taken = BackgroundAction.objects.filter(
        pk=record.pk, status=record.status, started_at=record.started_at
    ).update(status=BackgroundAction.Status.RUNNING, attempts=F("attempts") + 1, started_at=now)
    return taken == 1


def finish(action_id: str, status: str, error: str = "") -> None:
    """Record how the action ended."""
    from botdialogs.models import BackgroundAction

    BackgroundAction.objects.filter(action_id=action_id).update(
        status=status, error=error[:2000], finished_at=timezone.now()
    )


def perform_recorded(action: Any) -> str:
    """Perform a received action at most once (sync: Celery tasks); returns the outcome."""
    from botdialogs.background.actions import perform
    from botdialogs.models import BackgroundAction
    from botdialogs.sync import run_async

    checked = _checked(action)
    if checked is None:
        return REJECTED
    if not claim(checked):
        logger.info("Skipping %s: already performed or in progress", describe(checked))
        return DUPLICATE
    try:
        run_async(perform, checked)
    except BadBackgroundAction as error:
        logger.error("Rejected background action %s: %s", describe(checked), error)
        finish(checked["id"], BackgroundAction.Status.REJECTED, str(error))
        return REJECTED
    except Exception as error:
        finish(checked["id"], BackgroundAction.Status.RETRY, repr(error))
        raise
    finish(checked["id"], BackgroundAction.Status.DONE)
    return PERFORMED


def _checked(action: Any) -> dict[str, Any] | None:
    try:
        return validate_action(action)
    except BadBackgroundAction as error:
        logger.error("Rejected malformed background action %r: %s", action, error)
        return None


async def aperform_recorded(action: Any) -> str:
    """:func:`perform_recorded` for async callers on a long-lived loop (Channels worker)."""
    from asgiref.sync import sync_to_async

    from botdialogs.background.actions import perform
    from botdialogs.models import BackgroundAction

    checked = _checked(action)
    if checked is None:
        return REJECTED
    if not await sync_to_async(claim)(checked):
        logger.info("Skipping %s: already performed or in progress", describe(checked))
        return DUPLICATE
    try:
        await perform(checked)
    except BadBackgroundAction as error:
        logger.error("Rejected background action %s: %s", describe(checked), error)
        await sync_to_async(finish)(checked["id"], BackgroundAction.Status.REJECTED, str(error))
        return REJECTED
    except Exception as error:
        await sync_to_async(finish)(checked["id"], BackgroundAction.Status.RETRY, repr(error))
        raise
    await sync_to_async(finish)(checked["id"], BackgroundAction.Status.DONE)
    return PERFORMED
