"""The frame of the full-size runs (bench/load_run.py, bench/server_kill.py): a fresh
PostgreSQL database for one run, dropped afterwards, and Django set up on it."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable


def run_on_throwaway_database(
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

    from tests.reliability.private_pg import throwaway_database

    with throwaway_database(args.server) as url:
        os.environ.update(
            {"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "tests.reliability.settings"}
        )
        import django

        django.setup()
        return run(args, url)
