"""Failures injected where a unit of work closes, not in a handler: at the storage backend's
commit and rollback (public methods of :class:`~botdialogs.storage.database.StorageDatabase`).

Each fault is one way the close of a unit can go wrong after the handlers finished well:

- ``refused``: the commit raises a non-transient error before COMMIT (a bug of the driver
  or pool, such as psycopg-pool's ValueError for a connection given back twice);
- ``committed``: COMMIT reached the server, then giving the connection back raised;
- ``rollback``: the commit fails with a database error and the rollback raises too.

After ``refused`` and ``rollback`` nothing is stored; after ``committed`` everything is, and
the retry must find the claim committed. Either way the work must not be acknowledged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

from django.db import OperationalError

from botdialogs.engine import bots
from botdialogs.storage.database import StorageDatabase

FAULTS = ("refused", "committed", "rollback")


def storage_database() -> StorageDatabase:
    """The backend of the default storage (this process's DjangoStorage)."""
    database: StorageDatabase = bots.get_storage().database  # type: ignore[attr-defined]
    return database


@contextmanager
def failing_close(fault: str, database: StorageDatabase | None = None) -> Iterator[list[str]]:
    """Inject ``fault`` (one of :data:`FAULTS`) into every unit of work closed in the block.

    Yields the list of faults injected so far (a test asserts the fault was reached).
    """
    database = database or storage_database()
    commit, rollback = database.commit, database.rollback
    injected: list[str] = []

    async def failing_commit(transaction: Any, plan: Any) -> None:
        injected.append(fault)
        if fault == "committed":
            await commit(transaction, plan)
            raise ValueError("the connection was given back to the pool twice")
        if fault == "refused":
            raise ValueError("the connection was given back to the pool twice")
        raise OperationalError("server closed the connection unexpectedly")

    async def failing_rollback(transaction: Any) -> None:
        await rollback(transaction)
        raise ValueError("the connection was given back to the pool twice")

    with mock.patch.object(database, "commit", failing_commit):
        if fault == "rollback":
            with mock.patch.object(database, "rollback", failing_rollback):
                yield injected
        else:
            yield injected
    assert database.commit == commit and database.rollback == rollback


def stored(fault: str) -> bool:
    """Whether the faulty attempt's state was committed (only when COMMIT was sent)."""
    return fault == "committed"
