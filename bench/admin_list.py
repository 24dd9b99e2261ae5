"""How much slower is the admin's dialog stack list than the query it cannot avoid?

Fills ``--rows`` dialog stacks (bulk_create) into a scratch database on the configured
server (``DATABASE_URL``, or SQLite by default; named like a test database with the suffix
``TEST_DB_SUFFIX``, default ``_bench``), then times the stack changelist (the view and its
template, as a superuser) next to ``DialogStack.objects.order_by('-updated_at')[:100]``
measured in the same run, and prints the ratios. The scratch database is dropped at the end
unless ``--keep``.

    DJANGO_SETTINGS_MODULE=project.settings .venv/bin/python bench/admin_list.py --rows 200000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
os.environ.setdefault("TEST_DB_SUFFIX", "_bench")

import django

django.setup()

from django.contrib import admin  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.messages.storage.cookie import CookieStorage  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from botdialogs.engine.bots import bot_id  # noqa: E402
from botdialogs.models import DialogStack  # noqa: E402

STATES = ["MainMenu:menu", "FoodOrder:hungry", "FoodOrder:cart", "FoodOrder:placed"]
BATCH = 5000


def fill(rows: int, bot: int) -> None:
    """``rows`` stacks over two bots, most in the first, states spread like a real bot's."""
    now = timezone.now()
    for start in range(0, rows, BATCH):
        batch = []
        for n in range(start, min(start + BATCH, rows)):
            depth = 1 + n % 3
            batch.append(
                DialogStack(
                    bot_id=bot if n % 10 else bot + 1,
                    chat_id=1_000_000 + n,
                    user_id=1_000_000 + n,
                    intents=[f"{n:x}i{level}" for level in range(depth)],
                    depth=depth,
                    state=STATES[n % len(STATES)],
                    last_message_id=n,
                    expires_at=now,
                )
            )
        DialogStack.objects.bulk_create(batch)
        print(f"\r  {min(start + BATCH, rows)} rows", end="", flush=True)
    print()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # what autovacuum would have done by now
            cursor.execute(f"ANALYZE {DialogStack._meta.db_table}")


def timed(run: Callable[[], Any], repeat: int) -> float:
    """Median milliseconds of ``repeat`` runs, after one warm-up run."""
    run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


class SqlTimer:
    """Sums the time spent in SQL (a connection execute wrapper)."""

    def __init__(self) -> None:
        self.ms = 0.0
        self.count = 0

    def __call__(self, execute: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(*args)
        finally:
            self.ms += (time.perf_counter() - started) * 1000
            self.count += 1


def changelist(params: dict[str, str]) -> Callable[[], Any]:
    """A GET of the stack changelist as a superuser, rendered (no middleware, no session)."""
    model_admin = admin.site._registry[DialogStack]
    user = get_user_model()(username="bench", is_superuser=True, is_staff=True, is_active=True)
    path = reverse("admin:botdialogs_dialogstack_changelist")

    def run() -> Any:
        request = RequestFactory().get(path, params)
        request.user = user
        request._messages = CookieStorage(request)
        response = model_admin.changelist_view(request)
        response.render()
        assert response.status_code == 200, response.status_code
        return response

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="stacks to create")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) the database")
    args = parser.parse_args()

    creation = connection.creation
    name = creation.create_test_db(verbosity=0, autoclobber=True, keepdb=args.keep)
    print(f"{connection.vendor} database {name}")
    try:
        bot = bot_id("default")
        existing = DialogStack.objects.count()
        if existing < args.rows:
            print(f"filling {args.rows - existing} dialog stacks")
            fill(args.rows - existing, bot)
        plain_ms = timed(
            lambda: list(DialogStack.objects.order_by("-updated_at")[:100]), args.repeat
        )
        print(f"rows: {DialogStack.objects.count()}")
        print(f"plain query order_by('-updated_at')[:100]: {plain_ms:8.2f} ms")
        cases = {
            "changelist": {},
            "changelist ?bot=<default>": {"bot": str(bot)},
            "changelist ?state=FoodOrder:cart": {"state": "FoodOrder:cart"},
            "changelist ?bot=<default>&state=...": {"bot": str(bot), "state": "FoodOrder:cart"},
            "changelist ?q=<user id>": {"q": str(1_000_000 + args.rows // 2)},
            "changelist ?q=@nobody": {"q": "@nobody"},
        }
        for label, params in cases.items():
            run = changelist(params)
            sql = SqlTimer()
            with connection.execute_wrapper(sql):
                run()
            ms = timed(run, args.repeat)
            print(
                f"{label:<36} {ms:8.2f} ms  {ms / plain_ms:6.1f}x plain; "
                f"its {sql.count} queries took {sql.ms:7.2f} ms"
            )
    finally:
        if not args.keep:
            creation.destroy_test_db(name, verbosity=0)


if __name__ == "__main__":
    main()
