"""The action claim: a background action's id turns "done" with the state it changed.

Taken by the unit of work that performs the action (:mod:`.performing` passes it through
aiogram_dialog's event data, :mod:`.manager`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botdialogs.storage.claims import Claim


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
