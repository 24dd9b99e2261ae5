"""Performing received actions exactly once, in effect.

Each action has a :class:`~botdialogs.models.BackgroundAction` row. Its attempts are noted in
small transactions of their own, for the admin; what decides that the action is done is its
claim (:class:`~botdialogs.background.claims.ActionClaim`), passed with the action's event to
the unit of work that performs it (:func:`~botdialogs.background.actions.perform`): the row
turns "done" in the same transaction as the dialog state the action changed, under the chat
lock. So a retried or redelivered action that already committed is skipped, and one whose
worker died before the commit is performed again, however long the first attempt ran.

An action that failed for good (:class:`BadBackgroundAction`: unknown state, bad shape, or a
handler's bug) is recorded and never retried; one that failed for a passing reason (network,
Telegram 5xx/429, database) raises for the caller (Celery task, consumer) to retry.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.db.models import F
from django.utils import timezone

from botdialogs.background.actions import describe, validate_action
from botdialogs.background.claims import ActionClaim
from botdialogs.exceptions import BadBackgroundAction, is_transient
from botdialogs.monitor import publish_action
from botdialogs.storage import ClaimOutcome

logger = logging.getLogger("botdialogs.background")

PERFORMED = "performed"
DUPLICATE = "duplicate"
REJECTED = "rejected"


def note_attempt(action: dict[str, Any], broadcast_id: int | None = None) -> bool:
    """Record an attempt at ``action``; False when it is done or rejected already.

    For broadcasts (which note every chat's attempt up front) and failed attempts; a
    successful one is recorded by its claim, with the state.
    """
    from botdialogs.models import BackgroundAction

    now = timezone.now()
    chat_id, user_id = action.get("chat_id"), action.get("user_id")
    record, created = BackgroundAction.objects.get_or_create(
        action_id=action["id"],
        defaults={
            "bot_name": str(action.get("bot", ""))[:64],
            "action": str(action.get("action", ""))[:16],
            "chat_id": chat_id if isinstance(chat_id, int) else 0,
            "user_id": user_id if isinstance(user_id, int) else 0,
            "payload": action,
            "status": BackgroundAction.Status.RUNNING,
            "attempts": 1,
            "started_at": now,
            "broadcast_id": broadcast_id,
        },
    )
    if created:
        return True
    final = (BackgroundAction.Status.DONE, BackgroundAction.Status.REJECTED)
    if record.status in final:
        return False
    # Another worker may be performing it right now: the claim lets one of them commit.
    BackgroundAction.objects.filter(pk=record.pk).exclude(status__in=final).update(
        status=BackgroundAction.Status.RUNNING, attempts=F("attempts") + 1, started_at=now
    )
    return True


def finish(action_id: str, status: str, error: str = "") -> None:
    """Record how an attempt ended ("done" is the claim's to set, with the state)."""
    from botdialogs.models import BackgroundAction

    records = BackgroundAction.objects.filter(action_id=action_id)
    if status == BackgroundAction.Status.RETRY:
        records = records.exclude(status=BackgroundAction.Status.DONE)
    records.update(status=status, error=error[:2000], finished_at=timezone.now())


async def perform_claimed(action: dict[str, Any], claim: ActionClaim | None = None) -> str:
    """Perform ``action`` with its claim; PERFORMED, or DUPLICATE if it was done before.

    With a storage that has no unit of work (Redis, memory) the action is marked done
    after it ran, in a transaction of its own: at least once, not exactly once.
    """
    from botdialogs.background.actions import perform

    claim = claim or ActionClaim(action_id=action["id"], action=action)
    await perform(action, claim)
    if not await claim.confirm():
        return DUPLICATE
    publish_action(action)
    return PERFORMED


def perform_recorded(action: Any) -> str:
    """Perform a received action once (sync: Celery tasks); returns the outcome."""
    from botdialogs.engine.sync import call_async

    checked = _checked(action)
    if checked is None:
        return REJECTED
    # No bookkeeping first: the claim records the attempt in the unit's first round trip.
    claim = ActionClaim(action_id=checked["id"], action=checked)
    try:
        outcome = call_async(perform_claimed, checked, claim)
    except Exception as error:  # noqa: BLE001 - _failed raises again what may pass
        return _failed(checked, error, claim)
    _log_outcome(checked, outcome)
    return outcome


async def aperform_recorded(action: Any) -> str:
    """:func:`perform_recorded` for async callers on a long-lived loop (Channels worker)."""
    checked = _checked(action)
    if checked is None:
        return REJECTED
    claim = ActionClaim(action_id=checked["id"], action=checked)
    try:
        outcome = await perform_claimed(checked, claim)
    except Exception as error:  # noqa: BLE001 - _failed raises again what may pass
        return await sync_to_async(_failed)(checked, error, claim)
    _log_outcome(checked, outcome)
    return outcome


def _failed(action: dict[str, Any], error: Exception, claim: ActionClaim) -> str:
    """Record a failed attempt; raise it again when another attempt may succeed."""
    from botdialogs.models import BackgroundAction

    taken_with_a_bug = claim.outcome is ClaimOutcome.TAKEN and not is_transient(error)
    if not taken_with_a_bug and not note_attempt(action):
        return DUPLICATE  # done or rejected by another attempt meanwhile
    if is_transient(error):
        finish(action["id"], BackgroundAction.Status.RETRY, repr(error))
        raise error
    if isinstance(error, BadBackgroundAction):
        logger.error("Rejected background action %s: %s", describe(action), error)
    else:
        logger.error("Background action %s failed", describe(action), exc_info=error)
    finish(action["id"], BackgroundAction.Status.REJECTED, repr(error))
    return REJECTED


def _log_outcome(action: dict[str, Any], outcome: str) -> None:
    if outcome == DUPLICATE:
        logger.info("Skipping %s: performed by another attempt", describe(action))


def _checked(action: Any) -> dict[str, Any] | None:
    try:
        return validate_action(action)
    except BadBackgroundAction as error:
        logger.error("Rejected malformed background action %r: %s", action, error)
        return None
