"""``manage.py runbot <bot>``: long polling for development (deletes the webhook first)."""

from __future__ import annotations

import asyncio
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from botdialogs.conf import get_settings
from botdialogs.http import registration
from botdialogs.management.commands.webhookinfo import bot_name


class Command(BaseCommand):
    help = "Run the bot with long polling (development; deletes its webhook first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="Bot name in BOTDIALOGS['BOTS'].")

    def handle(self, *args: Any, **options: Any) -> None:
        name = bot_name(options["bot"])
        if get_settings().bot(name).is_local:
            raise CommandError(
                f"Bot {name!r} has no TOKEN: local Telegram delivers its updates to the "
                "webhook of the running server; there is nothing to poll"
            )
        self.stdout.write(f"Polling for {name}; Ctrl+C stops.")
        # Not call_async: polling owns the process, and only the main thread's loop receives
        # Ctrl+C as aiogram's graceful stop.
        asyncio.run(registration.run_polling(name))
