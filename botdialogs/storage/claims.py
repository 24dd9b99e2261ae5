"""Claims: the id that marks one piece of work done, committed with the state it changed.

An update (its ``update_id``), a background action (its action id), and later a timer firing
or a node step each carry a :class:`Claim`. The unit of work that handles the work takes the
claim in its first round trip, under the chat lock, and commits it in the same transaction
as the dialog state. So:

- a redelivery whose claim is already committed is acknowledged and not handled again
  (:class:`AlreadyProcessed`);
- a crash or a database error before that commit leaves no claim behind, and the retry is
  handled as if for the first time.

Whoever starts the work hands its claim down with :func:`claiming`: the first unit of work
opened below it (in this task or a task it spawns) takes the claim, exactly once.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from botdialogs.exceptions import BotDialogsError


class AlreadyProcessed(BotDialogsError):
    """The work's claim was committed before: a redelivery, acknowledged and not handled."""


@dataclass
class Claim:
    """One piece of work's id, taken in the same transaction as the state it changes.

    Subclasses give the SQL that takes it on PostgreSQL (a statement that returns a row when
    the claim is new, and none when it was taken) and the ORM steps for other databases.
    """

    #: Set by the unit of work that took it: True (new), False (already committed).
    fresh: bool | None = field(default=None, init=False)

    def sql(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """``(statement, params)`` returning a row if and only if the claim is new."""
        raise NotImplementedError

    def taken(self) -> bool:
        """Sync, ORM: whether the claim is already committed (read before handling)."""
        raise NotImplementedError

    def record(self, now: datetime) -> bool:
        """Sync, ORM, inside the unit's transaction: record it; False if it was taken."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short name for logs."""
        raise NotImplementedError


@dataclass
class UpdateClaim(Claim):
    """An update's ``update_id``: rows older than ``UPDATE_ID_TTL`` no longer count."""

    bot_name: str = ""
    update_id: int = 0
    ttl: timedelta = timedelta(days=1)

    def sql(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """Insert the id; an expired row is taken over, a live one returns nothing."""
        from botdialogs.models import ProcessedUpdate

        table = ProcessedUpdate._meta.db_table
        return (
            f"INSERT INTO {table} (bot_name, update_id, received_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (bot_name, update_id) DO UPDATE SET received_at = EXCLUDED.received_at "
            f"WHERE {table}.received_at < %s RETURNING 1",
            (self.bot_name, self.update_id, now, now - self.ttl),
        )

    def taken(self) -> bool:
        """Whether a live row for this update id exists."""
        from botdialogs.models import ProcessedUpdate

        cutoff = timezone.now() - self.ttl
        return ProcessedUpdate.objects.filter(
            bot_name=self.bot_name, update_id=self.update_id, received_at__gte=cutoff
        ).exists()

    def record(self, now: datetime) -> bool:
        """Insert the id (or take over an expired row); False when a live row exists."""
        from botdialogs.models import ProcessedUpdate

        try:
            with transaction.atomic():
                ProcessedUpdate.objects.create(
                    bot_name=self.bot_name, update_id=self.update_id, received_at=now
                )
        except IntegrityError:
            revived = ProcessedUpdate.objects.filter(
                bot_name=self.bot_name, update_id=self.update_id, received_at__lt=now - self.ttl
            ).update(received_at=now)
            return revived == 1
        return True

    def describe(self) -> str:
        """``update 42 of bot 'default'``."""
        return f"update {self.update_id} of bot {self.bot_name!r}"


@dataclass
class ActionClaim(Claim):
    """A background action's id: its BackgroundAction row turns "done" with the state.

    The row is created by the claim itself when it is missing (one statement, in the unit's
    first round trip), so performing an action costs the unit's two round trips and nothing
    more; ``action`` (the action dict) fills the new row's columns.
    """

    action_id: str = ""
    action: dict[str, Any] = field(default_factory=dict)

    def sql(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """Insert the action as done, or mark it done, unless it was done or rejected."""
        from psycopg.types.json import Jsonb

        from botdialogs.models import BackgroundAction

        table = BackgroundAction._meta.db_table
        done, rejected = self._final()
        row = self._row(now)
        columns = ", ".join(row)
        placeholders = ", ".join(["%s"] * len(row))
        return (
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders}) "
            "ON CONFLICT (action_id) DO UPDATE SET status = EXCLUDED.status, "
            f"finished_at = EXCLUDED.finished_at, error = '', attempts = {table}.attempts + 1 "
            f"WHERE {table}.status NOT IN (%s, %s) RETURNING 1",
            (*(Jsonb(v) if k == "payload" else v for k, v in row.items()), done, rejected),
        )

    def _row(self, now: datetime) -> dict[str, Any]:
        from botdialogs.models import BackgroundAction

        action = self.action
        return {
            "action_id": self.action_id,
            "bot_name": str(action.get("bot", ""))[:64],
            "action": str(action.get("action", ""))[:16],
            "chat_id": action.get("chat_id") if isinstance(action.get("chat_id"), int) else 0,
            "user_id": action.get("user_id") if isinstance(action.get("user_id"), int) else 0,
            "payload": action,
            "status": BackgroundAction.Status.DONE.value,
            "attempts": 1,
            "error": "",
            "started_at": now,
            "finished_at": now,
        }

    @staticmethod
    def _final() -> tuple[str, str]:
        from botdialogs.models import BackgroundAction

        return (BackgroundAction.Status.DONE.value, BackgroundAction.Status.REJECTED.value)

    def taken(self) -> bool:
        """Whether the action is done or rejected already."""
        from botdialogs.models import BackgroundAction

        return BackgroundAction.objects.filter(
            action_id=self.action_id, status__in=self._final()
        ).exists()

    def record(self, now: datetime) -> bool:
        """Insert it as done, or mark it done; False when it already was (or was rejected)."""
        from django.db.models import F

        from botdialogs.models import BackgroundAction

        row = self._row(now)
        _record, created = BackgroundAction.objects.get_or_create(
            action_id=row.pop("action_id"), defaults=row
        )
        if created:
            return True
        return (
            BackgroundAction.objects.filter(action_id=self.action_id)
            .exclude(status__in=self._final())
            .update(status=row["status"], finished_at=now, error="", attempts=F("attempts") + 1)
        ) == 1

    def describe(self) -> str:
        """``background action <id>``."""
        return f"background action {self.action_id}"


@dataclass
class TimerClaim(Claim):
    """A dialog timer's id: its row turns "fired" with the state, only while still pending.

    A timer cancelled or replaced before this commit is not pending any more: its firing
    finds the claim taken and does nothing.
    """

    timer_id: str = ""

    def sql(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """Mark the pending timer fired; no row when it fired, failed or was cancelled."""
        from botdialogs.models import DialogTimer

        table = DialogTimer._meta.db_table
        return (
            f"UPDATE {table} SET status = %s, finished_at = %s, leased_until = NULL "
            "WHERE id = %s AND status = %s RETURNING 1",
            (
                DialogTimer.Status.FIRED.value,
                now,
                self.timer_id,
                DialogTimer.Status.PENDING.value,
            ),
        )

    def taken(self) -> bool:
        """Whether the timer is no longer pending."""
        from botdialogs.models import DialogTimer

        return not DialogTimer.objects.filter(
            id=self.timer_id, status=DialogTimer.Status.PENDING
        ).exists()

    def record(self, now: datetime) -> bool:
        """Mark it fired; False when it was not pending any more."""
        from botdialogs.models import DialogTimer

        return (
            DialogTimer.objects.filter(id=self.timer_id, status=DialogTimer.Status.PENDING).update(
                status=DialogTimer.Status.FIRED, finished_at=now, leased_until=None
            )
        ) == 1

    def describe(self) -> str:
        """``dialog timer <id>``."""
        return f"dialog timer {self.timer_id}"


class _Pending:
    """A claim handed down to the first unit of work below; taken once, then gone."""

    __slots__ = ("claim",)

    def __init__(self, claim: Claim) -> None:
        self.claim: Claim | None = claim


_pending: contextvars.ContextVar[_Pending | None] = contextvars.ContextVar(
    "botdialogs_pending_claim", default=None
)


@contextmanager
def claiming(claim: Claim) -> Iterator[Claim]:
    """Hand ``claim`` to the first unit of work opened inside this block.

    Tasks spawned inside copy the context and share the same holder, so the claim is taken
    by exactly one unit, whichever task opens it (aiogram_dialog's background events run in
    a task of their own).
    """
    token = _pending.set(_Pending(claim))
    try:
        yield claim
    finally:
        _pending.reset(token)


def take_pending() -> Claim | None:
    """The claim handed down to this unit of work, if any (and no other unit will get it)."""
    pending = _pending.get()
    if pending is None or pending.claim is None:
        return None
    claim, pending.claim = pending.claim, None
    return claim
