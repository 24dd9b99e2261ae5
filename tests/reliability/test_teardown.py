"""No flaky teardown: what tests start is gone, and the database quiet, before the flush.

A stopped or killed test process takes the processes it started with it (Celery's pool
children would otherwise keep the test database open), and a database session that stays
busy after a test is ended instead of letting the flush wait for it forever.
"""

from __future__ import annotations

import sys
import textwrap

import psycopg
import pytest

from botdialogs.testing import ManagedProcess, wait_until
from botdialogs.testing.databases import wait_for_quiet
from botdialogs.testing.postgres import PrivatePostgres
from botdialogs.testing.processes import alive

pytestmark = pytest.mark.processes  # each test starts Python processes and stops or kills them

# Starts a child that would outlive it, prints the child's pid, then waits to be stopped.
PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.pid, flush=True)
    time.sleep(600)
    """
)


def started_family() -> tuple[ManagedProcess, int]:
    """A parent process and the pid of the child it started."""
    family = ManagedProcess([sys.executable, "-c", PARENT], env={})
    family.start()
    child = int(wait_until(lambda: family.output().strip(), timeout=30))
    return family, child


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_stopping_a_process_ends_the_processes_it_started(how: str) -> None:
    family, child = started_family()
    assert alive(child)
    if how == "stop":
        family.stop()
    else:
        family.kill()  # the whole group dies at once, as in a crash
        family.stop()
    assert not family.running
    wait_until(lambda: not alive(child), timeout=10)


def test_a_killed_process_starts_again() -> None:
    family, _child = started_family()
    first = family.pid
    family.kill()
    family.start()
    try:
        assert family.running and family.pid != first
    finally:
        family.stop()


def test_a_session_busy_after_the_test_is_ended_before_the_flush(
    private_postgres: PrivatePostgres, private_database: str
) -> None:
    url = private_postgres.url(private_database)
    with psycopg.connect(url, autocommit=True) as watcher, watcher.cursor() as cursor:
        wait_for_quiet(cursor, timeout=5)  # nobody else: returns at once
        with psycopg.connect(url) as straggler:
            straggler.execute("SELECT count(*) FROM botdialogs_dialogstack")  # opens a transaction
            with pytest.raises(AssertionError, match="idle in transaction"):
                wait_for_quiet(cursor, timeout=0.5)
            with pytest.raises(psycopg.OperationalError):
                straggler.execute("SELECT 1")  # it was terminated
        wait_for_quiet(cursor, timeout=5)
