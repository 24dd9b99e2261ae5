"""PostgreSQL databases a test makes for itself, named after this run's test database.

Two runs on one server (two checkouts, CI beside a developer) never share or drop each
other's databases, and nothing is left behind: each database is dropped when its test ends.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from django.conf import settings

#: The server tests make their own databases on (the configured one when it is PostgreSQL).
SERVER = os.environ.get("ISOLATION_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def test_database_name() -> str:
    """This run's test database name (pytest-django's ``test_<NAME>``), as an identifier."""
    configured = settings.DATABASES["default"]
    name = configured.get("TEST", {}).get("NAME") or f"test_{Path(str(configured['NAME'])).stem}"
    return "".join(c if c.isalnum() else "_" for c in name).lower()


@contextmanager
def scratch_database(purpose: str) -> Iterator[str]:
    """A new, empty database ``<test database>_<purpose>`` for the block; yields its URL."""
    name = f"{test_database_name()}_{purpose}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
