"""Scratch databases: PostgreSQL databases made for one test or one run, and dropped after it.

- :func:`scratch_database`: an empty database beside this run's test database, named after
  it, so two runs on one server (two checkouts, CI beside a developer) never share or drop
  each other's databases.
- :func:`migrated_scratch_database`: a migrated database for a full-size run (bench), on a
  private server of its own or under a fresh name on a given server.
- :func:`wait_for_quiet_database`: before a test's flush, until the servers it talked to are
  done with the test database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from botdialogs.testing.postgres import PrivatePostgres, migrate

#: The server tests make their own databases on (the configured one when it is PostgreSQL).
SERVER = os.environ.get("ISOLATION_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")


def test_database_name() -> str:
    """This run's test database name (pytest-django's ``test_<NAME>``), as an identifier."""
    configured = settings.DATABASES["default"]
    name = configured.get("TEST", {}).get("NAME") or f"test_{Path(str(configured['NAME'])).stem}"
    return "".join(c if c.isalnum() else "_" for c in name).lower()


def _drop(server_url: str, name: str) -> None:
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(purpose: str) -> Iterator[str]:
    """A new, empty database ``<test database>_<purpose>`` for the block; yields its URL."""
    name = f"{test_database_name()}_{purpose}"
    _drop(SERVER, name)
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{SERVER}/{name}"
    finally:
        _drop(SERVER, name)


@contextmanager
def migrated_scratch_database(
    server_url: str | None = None, settings_module: str | None = None
) -> Iterator[str]:
    """A new, migrated database for one run; yields its URL and drops it afterwards.

    On a private server of its own (None: needs the PostgreSQL binaries), or on the
    PostgreSQL server at ``server_url`` (``postgres://user@host:port``) under a fresh name:
    existing databases are never touched. ``settings_module``: the site whose tables are
    migrated (default: ``DJANGO_SETTINGS_MODULE``).
    """
    if server_url is None:
        with PrivatePostgres() as server:
            url = server.create_database("run")
            migrate(url, settings_module)
            yield url
        return
    name = f"botdialogs_run_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        migrate(f"{server_url}/{name}", settings_module)
        yield f"{server_url}/{name}"
    finally:
        _drop(server_url, name)


#: Seconds a test's servers get to finish their database work before the flush.
QUIET_TIMEOUT = 30.0


def wait_for_quiet_database(timeout: float = QUIET_TIMEOUT) -> None:
    """Wait until no other session works on the test database (see :func:`wait_for_quiet`).

    SQLite needs nothing: a writer that holds the file makes the flush fail after its busy
    timeout, never hang.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        wait_for_quiet(cursor, timeout)


def wait_for_quiet(cursor: Any, timeout: float = QUIET_TIMEOUT) -> None:
    """Wait until no other session of the cursor's PostgreSQL database runs a statement or
    sits in a transaction, so a flush that follows cannot wait on one forever.

    A session still busy after ``timeout`` is terminated (the flush then goes through) and
    AssertionError says what it was doing.
    """
    busy = (
        "SELECT pid, state, left(query, 200) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend' "
        "AND (state = 'active' OR state LIKE %s)"
    )
    deadline = time.monotonic() + timeout
    while True:
        cursor.execute(busy, ["idle in transaction%"])
        sessions = cursor.fetchall()
        if not sessions:
            return
        if time.monotonic() > deadline:
            for pid, _state, _query in sessions:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            raise AssertionError(
                f"Database sessions still busy {timeout}s after the test (terminated so the "
                f"flush can run): {sessions}"
            )
        time.sleep(0.05)  # polling another process's sessions
