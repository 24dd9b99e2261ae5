"""The update claim: an update's ``update_id`` commits with the state its handlers changed.

Taken by the unit of work the FSM middleware opens (:mod:`botdialogs.engine.middleware`),
from the claim the webhook passes in ``feed_update``'s data (:mod:`botdialogs.http.webhook`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from botdialogs.storage.claims import Claim


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
