"""``manage.py setwebhook <bot> --url https://…/bots/<bot>/webhook/``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from botdialogs.engine.sync import call_async
from botdialogs.http import registration
from botdialogs.management.commands.webhookinfo import bot_name


class Command(BaseCommand):
    help = "Point Telegram at the bot's webhook URL, with its secret and allowed updates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="Bot name in BOTDIALOGS['BOTS'].")
        parser.add_argument("--url", required=True, help="Public HTTPS URL of the webhook.")
        parser.add_argument(
            "--drop-pending-updates", action="store_true", help="Discard queued updates."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = bot_name(options["bot"])
        call_async(registration.set_webhook, name, options["url"], options["drop_pending_updates"])
        types = ", ".join(registration.allowed_updates(name))
        self.stdout.write(self.style.SUCCESS(f"Webhook of {name} set to {options['url']}"))
        self.stdout.write(f"Allowed updates: {types}")
