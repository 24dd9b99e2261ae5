"""``manage.py setcommands <bot>``: the bot's menu of commands in each site language."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from botdialogs.engine.bot_commands import set_commands
from botdialogs.engine.sync import call_async
from botdialogs.management.commands.webhookinfo import bot_name


class Command(BaseCommand):
    help = (
        "Set the bot's commands (setMyCommands) for every language in settings.LANGUAGES, "
        "from BOTDIALOGS['BOT_COMMANDS'] and the site's translation catalogs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bot", help="Bot name in BOTDIALOGS['BOTS'].")

    def handle(self, *args: Any, **options: Any) -> None:
        sent = call_async(set_commands, bot_name(options["bot"]))
        for code, commands in sent.items():
            listed = ", ".join(f"/{c.command} {c.description}" for c in commands) or "none"
            self.stdout.write(f"{code or 'default'}: {listed}")
