"""Claims: the id that marks one piece of work done, committed with the state it changed.

An update (its ``update_id``), a background action (its action id), a timer firing (its
timer id) each carry a :class:`Claim`. Each concrete claim lives with the layer that owns
its table: ``botdialogs.http.claims.UpdateClaim``, ``botdialogs.background.claims.ActionClaim``
and ``botdialogs.timers.claims.TimerClaim``; this module knows none of their tables.

Whoever starts the work passes the claim down explicitly, to
:meth:`botdialogs.storage.DjangoStorage.unit_of_work` (through aiogram's event data on the
update path). The unit of work takes it in its first round trip, under the chat lock, and
commits it in the same transaction as the dialog state. So:

- a redelivery whose claim is already committed is acknowledged and not handled again
  (:class:`AlreadyProcessed`, outcome :attr:`ClaimOutcome.DUPLICATE`);
- a crash or a database error before that commit leaves no claim behind, and the retry is
  handled as if for the first time;
- a unit of work that took the claim and then failed to commit it (opening, committing or
  closing raised; outcome :attr:`ClaimOutcome.NOT_COMMITTED`) makes :meth:`Claim.confirm`
  raise :class:`~botdialogs.exceptions.StorageUnavailable`: the work is retried, never
  acknowledged, even when something between (a site's catch-all error handler) swallowed
  the unit's error.

With a storage that has no unit of work (Redis, memory) nothing takes the claim during the
work (outcome :attr:`ClaimOutcome.PENDING`): :meth:`Claim.confirm` records it afterwards,
in a transaction of its own. That is at least once, not exactly once.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.utils import timezone

from botdialogs.exceptions import BotDialogsError, StorageUnavailable


class AlreadyProcessed(BotDialogsError):
    """The work's claim was committed before: a redelivery, acknowledged and not handled."""


class ClaimOutcome(enum.Enum):
    """What became of a claim."""

    #: No unit of work took it (yet): a storage without one, or the work has not started.
    PENDING = "pending"
    #: Taken by this work: it commits (or committed) with the state the work changed.
    TAKEN = "taken"
    #: Committed by an earlier delivery: the work was not done again.
    DUPLICATE = "duplicate"
    #: Taken by a unit of work that then did not commit (it failed to open, commit or close,
    #: or the work raised a passing error): nothing of the work is stored; do it again.
    NOT_COMMITTED = "not committed"


@dataclass
class Claim(ABC):
    """One piece of work's id, taken in the same transaction as the state it changes.

    Subclasses give the SQL that takes it on PostgreSQL (a statement that returns a row when
    the claim is new, and none when it was taken) and the ORM steps for other databases.
    """

    #: Set by the unit of work that takes it, or by :meth:`confirm`.
    outcome: ClaimOutcome = field(default=ClaimOutcome.PENDING, init=False)

    @abstractmethod
    def sql(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """``(statement, params)`` returning a row if and only if the claim is new."""

    @abstractmethod
    def taken(self) -> bool:
        """Sync, ORM: whether the claim is already committed (read before handling)."""

    @abstractmethod
    def record(self, now: datetime) -> bool:
        """Sync, ORM, inside the unit's transaction: record it; False if it was taken."""

    @abstractmethod
    def describe(self) -> str:
        """A short name for logs."""

    async def confirm(self) -> bool:
        """After the work: True if this work is the one that did it, False for a duplicate.

        A claim no unit of work took (a storage without one) is recorded now, in a
        transaction of its own. Raises StorageUnavailable when a unit of work took it and
        did not commit: the work is not done, and must be tried again.
        """
        if self.outcome is ClaimOutcome.NOT_COMMITTED:
            raise StorageUnavailable(f"{self.describe()} was not committed: to be done again")
        if self.outcome is ClaimOutcome.PENDING:
            recorded = await sync_to_async(self.record)(timezone.now())
            self.outcome = ClaimOutcome.TAKEN if recorded else ClaimOutcome.DUPLICATE
        return self.outcome is ClaimOutcome.TAKEN
