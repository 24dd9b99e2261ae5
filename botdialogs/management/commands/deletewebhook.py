"""``manage.py deletewebhook <bot>``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from botdialogs.engine.sync import call_async
from botdialogs.http import registration
from botdialogs.management.commands.webhookinfo import bot_name


class Command(BaseCommand):
    help = "Stop Telegram's deliveries to the bot's webhook."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="Bot name in BOTDIALOGS['BOTS'].")
        parser.add_argument(
            "--drop-pending-updates", action="store_true", help="Discard queued updates."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = bot_name(options["bot"])
        call_async(registration.delete_webhook, name, options["drop_pending_updates"])
        self.stdout.write(self.style.SUCCESS(f"Webhook of {name} deleted"))
