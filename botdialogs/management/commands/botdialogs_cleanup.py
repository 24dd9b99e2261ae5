"""``manage.py botdialogs_cleanup``: delete expired FSM records, dialog stacks and contexts."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from botdialogs.storage.cleanup import BATCH_SIZE, delete_expired


class Command(BaseCommand):
    help = "Delete the FSM records, dialog stacks and contexts whose TTL has expired."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"Rows per transaction (default {BATCH_SIZE}).",
        )

    def handle(self, *args: Any, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        counts = delete_expired(batch_size=batch_size)
        self.stdout.write(
            f"Deleted {counts['fsm_records']} FSM records, {counts['stacks']} dialog stacks "
            f"and {counts['contexts']} dialog contexts; cleared the expired part of "
            f"{counts['fsm_cleared']} FSM records; forgot {counts['update_ids']} webhook "
            "update ids."
        )
