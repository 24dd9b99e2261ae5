"""manage.py broadcast: send a background action to many chats, with a progress bar."""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from botdialogs.background.broadcast import create, run
from botdialogs.engine.bots import bot_id
from botdialogs.exceptions import BotDialogsError
from botdialogs.models import Broadcast, TelegramChat


class Command(BaseCommand):
    help = (
        "Start a dialog in (or update the dialog of) every chat of a bot that has not "
        "blocked it, within Telegram's rate limits. --resume ID continues a broadcast."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", nargs="?", choices=["start", "update", "switch_to", "done"])
        parser.add_argument("--bot", default="default")
        parser.add_argument("--state", help='"Group:state" for start and switch_to')
        parser.add_argument("--data", default=None, help="JSON: start data / dialog_data update")
        parser.add_argument("--mode", default=None, help="start mode: normal, reset_stack, …")
        parser.add_argument("--show-mode", default=None, help="auto, edit, send, …")
        parser.add_argument("--chat", type=int, action="append", help="only these chat ids")
        parser.add_argument("--resume", type=int, help="continue broadcast ID")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["resume"]:
                broadcast = Broadcast.objects.get(pk=options["resume"])
            else:
                broadcast = self._create(options)
            self.stdout.write(f"Broadcast #{broadcast.pk}: {broadcast.total} chats")
            broadcast = run(broadcast.pk, progress=self._bar)
        except (BotDialogsError, Broadcast.DoesNotExist, ValueError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write("")
        self.stdout.write(
            self.style.SUCCESS(
                f"Broadcast #{broadcast.pk} {broadcast.status}: {broadcast.sent} sent, "
                f"{broadcast.failed} failed, {broadcast.skipped} skipped of {broadcast.total}"
            )
        )

    def _create(self, options: dict[str, Any]) -> Broadcast:
        action = options["action"]
        if not action:
            raise CommandError("Give an action (start, update, switch_to, done) or --resume ID")
        chats = TelegramChat.objects.filter(bot_id=bot_id(options["bot"]), is_blocked=False)
        if options["chat"]:
            chats = chats.filter(chat_id__in=options["chat"])
        parameters: dict[str, Any] = {}
        data = json.loads(options["data"]) if options["data"] else None
        if action in ("start", "switch_to"):
            parameters["state"] = options["state"]
        if action in ("start", "update"):
            parameters["data"] = data
        if action == "done":
            parameters["result"] = data
        if action == "start" and options["mode"]:
            parameters["mode"] = options["mode"]
        if options["show_mode"]:
            parameters["show_mode"] = options["show_mode"]
        return create(chats, action, bot=options["bot"], **parameters)

    def _bar(self, broadcast: Broadcast) -> None:
        width = 30
        done = broadcast.processed
        filled = width * done // broadcast.total if broadcast.total else width
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{broadcast.total} "
            f"sent {broadcast.sent} failed {broadcast.failed} skipped {broadcast.skipped}"
        )
        self.stdout.write(line, ending="")
        if hasattr(self.stdout, "flush"):
            self.stdout.flush()
        elif sys.stdout:
            sys.stdout.flush()
