"""The frame of the full-size runs (bench/load_run.py, bench/server_kill.py): a scratch
PostgreSQL database for one run, dropped afterwards, Django set up on it, and the environment
of the servers and workers a run starts."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

from botdialogs.testing import process_env

#: The site the runs serve, its settings (the demo plus the ``steps`` bot) and secret.
APP = "project.asgi:application"
SETTINGS = "bench.run_settings"
WEBHOOK_SECRET = "bench-webhook-secret"
BROKER_VARIABLES = ("REDIS_URL", "CELERY_BROKER_URL")


def run_on_scratch_database(
    parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace, str], int]
) -> int:
    """Add ``--seed`` and ``--server`` to ``parser``, parse the command line, and call
    ``run(args, database_url)`` on a new database; returns what ``run`` returns.

    The database lives on a PostgreSQL server of the run's own (needs the PostgreSQL
    binaries), or with ``--server`` under a fresh name on that server.
    """
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--server", help="PostgreSQL server URL (default: a private one)")
    args = parser.parse_args()

    from botdialogs.testing.databases import migrated_scratch_database

    with migrated_scratch_database(args.server, SETTINGS) as url:
        os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS})
        import django

        django.setup()
        return run(args, url)


def run_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    """The environment of a server or worker of a run: ``base`` (a database), the run's
    settings and secret, no broker or bot token unless ``extra`` gives one."""
    drop = (*BROKER_VARIABLES, "TELEGRAM_BOT_TOKEN")
    return process_env(base, SETTINGS, drop=drop, TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET, **extra)


def queued_run_env(base: dict[str, str], broker: str, queue: str, **extra: str) -> dict[str, str]:
    """:func:`run_env` for queued bots on ``broker``'s ``queue``."""
    return run_env(base, BOT_MODE="queued", REDIS_URL=broker, RUN_QUEUE=queue, **extra)
