"""Fixtures of the reliability tests: a private PostgreSQL, PgBouncer, a broker queue of the
test's own (helpers for the processes they start: :mod:`tests.reliability.services`).

Servers and workers are started inside the tests (or function fixtures that come after the
database), so each is stopped and reaped before pytest-django flushes the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from botdialogs.testing.postgres import PgBouncer, PrivatePostgres
from botdialogs.testing.queues import purge_queue, redis_url
from tests.reliability.services import SETTINGS

TEMPLATE = "botdialogs_template"


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this run's own, with the project's tables migrated into a
    template database (tests copy it: :func:`private_database`)."""
    server = PrivatePostgres()
    try:
        server.start()
        server.create_database(TEMPLATE)
        server.migrate(TEMPLATE, settings=SETTINGS)
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_database(private_postgres: PrivatePostgres) -> str:
    """A fresh, migrated database on the private server; returns its name."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    private_postgres.create_database(name, template=TEMPLATE)
    return name


@pytest.fixture
def pgbouncer(private_postgres: PrivatePostgres) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling in front of the private server."""
    with PgBouncer(private_postgres.port, pool_mode="transaction") as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def broker() -> str:
    """The Redis broker of this run (``REDIS_URL``, else the local default)."""
    return redis_url()


@pytest.fixture
def queue(broker: str) -> Iterator[str]:
    """A Celery queue of this test's own, emptied afterwards."""
    name = f"reliability-{uuid.uuid4().hex[:10]}"
    yield name
    purge_queue(broker, name)


@pytest.fixture
def gate_dir(tmp_path: Path) -> Path:
    """The folder of the ``gate`` bot's markers."""
    folder = tmp_path / "gate"
    folder.mkdir()
    return folder
