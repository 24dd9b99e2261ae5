"""The timer claim: a dialog timer turns "fired" with the state its action changed.

Taken by the unit of work that performs the timer's action (:mod:`.firing`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botdialogs.storage.claims import Claim


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
