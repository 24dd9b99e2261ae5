"""``manage.py webhookinfo <bot>``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from botdialogs.conf import get_settings
from botdialogs.engine.sync import call_async
from botdialogs.exceptions import UnknownBot
from botdialogs.http import registration


def bot_name(name: str) -> str:
    """``name`` if it is a configured bot, else a CommandError listing the bots."""
    try:
        get_settings().bot(name)
    except UnknownBot:
        known = ", ".join(get_settings().bots) or "none"
        raise CommandError(f"No bot named {name!r} (configured: {known})") from None
    return name


class Command(BaseCommand):
    help = "Show what Telegram knows of the bot's webhook."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="Bot name in BOTDIALOGS['BOTS'].")

    def handle(self, *args: Any, **options: Any) -> None:
        info = call_async(registration.webhook_info, bot_name(options["bot"]))
        self.stdout.write(json.dumps(info, indent=2, sort_keys=True, default=str))
