"""``manage.py botdialogs_import_redis``: copy an aiogram RedisStorage into botdialogs' tables."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper

from botdialogs.engine.bots import bot_id, bot_name_for_id, get_storage
from botdialogs.engine.sync import call_async
from botdialogs.exceptions import UnknownBot
from botdialogs.storage import DjangoStorage
from botdialogs.storage.redis_import import (
    BATCH_SIZE,
    CONCURRENCY,
    ImportSummary,
    import_redis,
)
from botdialogs.storage.redis_keys import RedisKeyLayout


class Command(BaseCommand):
    bar: ProgressBar | None = None
    help = (
        "Copy the FSM states and data, and aiogram_dialog's stacks and contexts, that an "
        "aiogram RedisStorage holds into botdialogs' tables (run it again: same rows). The key "
        "options are those of the bot's aiogram DefaultKeyBuilder."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", required=True, help="the Redis, e.g. redis://host:6379/0")
        parser.add_argument("--key-prefix", default="fsm", help="DefaultKeyBuilder's prefix")
        parser.add_argument("--separator", default=":", help="DefaultKeyBuilder's separator")
        parser.add_argument("--with-bot-id", action="store_true", help="keys hold the bot id")
        parser.add_argument(
            "--with-business-connection-id",
            action="store_true",
            help="keys hold business connection ids",
        )
        parser.add_argument(
            "--with-destiny",
            action="store_true",
            help="keys hold the destiny (aiogram_dialog needs it)",
        )
        parser.add_argument(
            "--bot",
            help="the bot (a BOTDIALOGS['BOTS'] name) the keys are of: needed when keys hold "
            "no bot id (default: 'default'); with --with-bot-id only its keys are copied",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="read and check everything, write nothing"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help=f"keys per SCAN and MGET (default {BATCH_SIZE})",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=CONCURRENCY,
            help=f"chats written at once (default {CONCURRENCY})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        verbosity = options["verbosity"]
        try:
            layout = RedisKeyLayout(
                prefix=options["key_prefix"],
                separator=options["separator"],
                with_bot_id=options["with_bot_id"],
                with_business_connection_id=options["with_business_connection_id"],
                with_destiny=options["with_destiny"],
            )
            name = options["bot"] or (None if layout.with_bot_id else "default")
            telegram_bot_id = bot_id(name) if name else None
        except (ValueError, UnknownBot) as error:
            raise CommandError(str(error)) from error
        if options["batch_size"] < 1 or options["concurrency"] < 1:
            raise CommandError("--batch-size and --concurrency must be at least 1")
        storage = get_storage()
        if not isinstance(storage, DjangoStorage):
            raise CommandError(
                f"BOTDIALOGS['STORAGE'] is {type(storage).__name__}: the import writes "
                "botdialogs' tables through DjangoStorage, so set it to "
                "botdialogs.storage.DjangoStorage (the default) first"
            )
        bar = self.bar = ProgressBar(self.stderr) if verbosity > 0 else None
        summary = call_async(
            import_redis,
            options["url"],
            storage,
            layout,
            bot_id=telegram_bot_id,
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            concurrency=options["concurrency"],
            progress=bar.show if bar else None,
            on_skip=self._skipped,
        )
        if bar:
            bar.end()
        if verbosity > 0:
            self._report(summary, options["dry_run"])
        if summary.skipped:
            raise CommandError(
                f"{summary.skipped} key(s) skipped (listed above); every other key was "
                + ("checked" if options["dry_run"] else "copied")
            )

    def _skipped(self, key: str, reason: str) -> None:
        if self.bar:
            self.bar.interrupt()
        self.stderr.write(f"Skipped {key}: {reason}")

    def _report(self, summary: ImportSummary, dry_run: bool) -> None:
        verb = "Would copy" if dry_run else "Copied"
        self.stdout.write(
            f"{verb} {summary.copied} of {summary.found} keys: {summary.states} FSM states, "
            f"{summary.fsm_data} FSM data, {summary.stacks} dialog stacks, "
            f"{summary.contexts} dialog contexts."
        )
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        unknown = sorted(i for i in summary.bot_ids if bot_name_for_id(i) is None)
        if unknown:
            self.stdout.write(
                self.style.WARNING(
                    f"Keys of bot id(s) {', '.join(map(str, unknown))}: no bot in "
                    "BOTDIALOGS['BOTS'] has that id (its token), so no bot here will read them."
                )
            )
        if summary.locks:
            self.stdout.write(
                self.style.WARNING(
                    f"{summary.locks} event isolation lock(s) found: is a bot still running on "
                    "this Redis? Stop it and run the import again to copy its last changes."
                )
            )
        if summary.vanished:
            self.stdout.write(f"{summary.vanished} key(s) went away during the import.")
        if summary.found == 0:
            self.stdout.write(
                self.style.WARNING(
                    f"No keys matched {summary.pattern!r}: check --key-prefix, --separator, "
                    "--with-bot-id and --bot"
                )
            )


class ProgressBar:
    """A one-line progress bar on a terminal; a line per tenth of the work elsewhere."""

    width = 30

    def __init__(self, out: OutputWrapper) -> None:
        self.out = out
        self.terminal = out.isatty()
        self.shown_tenths = -1
        self.drawn = False

    def show(self, done: int, total: int) -> None:
        """Draw ``done`` of ``total`` keys."""
        done = min(done, total)
        share = done / total if total else 1.0
        line = f"[{'#' * int(self.width * share):.<{self.width}}] {done}/{total} keys"
        if self.terminal:
            self.out.write(f"\r{line}", ending="")
            self.out.flush()
            self.drawn = True
        elif int(share * 10) > self.shown_tenths:
            self.shown_tenths = int(share * 10)
            self.out.write(line)

    def interrupt(self) -> None:
        """Leave the bar's line, for a message; the next :meth:`show` draws it anew below."""
        if self.drawn:
            self.out.write("")
            self.drawn = False

    def end(self) -> None:
        """Leave the bar's line for good."""
        self.interrupt()
