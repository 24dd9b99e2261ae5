"""The pytest plugin of the test kit: fixtures for a site's bot dialog tests, and test tiers.

Enable it in the site's ``conftest.py`` (it needs pytest-django)::

    pytest_plugins = ["botdialogs.testing.pytest_plugin"]

and name the site's ASGI application in the pytest configuration::

    [tool.pytest.ini_options]
    botdialogs_asgi_app = "mysite.asgi:application"

Fixtures:

- ``bot_api``: a :class:`~botdialogs.testing.RecordingSession` that every Bot the registry
  builds during the test talks to (no server, no HTTP): a unit test of a dialog.
- ``server_env`` (session): the environment of a server process on the test database.
- ``asgi_server`` (session): the site on uvicorn (:class:`~botdialogs.testing.AsgiServer`).
- ``local_telegram``: local Telegram on ``asgi_server`` for one test, on
  ``transactional_db`` (the server must see the rows); the test database is quiet before its
  flush.
- ``thread_connections_closed``: after the test, closes the database connections that
  ``sync_to_async`` opened in asgiref's thread. Every ``async def`` test gets it: pytest-django
  closes the main thread's connection only, and a connection left in asgiref's thread (it
  lives for the whole run) keeps PostgreSQL from dropping the test database at the end.

Tiers: every test that uses a fixture which starts processes (the ones above that do, and
those the ``botdialogs_process_fixtures`` option names, directly or through other fixtures)
is marked ``processes``; a test marked ``slow`` by hand runs in this process but long (fuzzing,
thousands of chats); every other test is marked ``fast``. ``pytest -m fast`` runs the fast
tier, ``pytest`` everything. A fast test that starts a process anyway (``subprocess``,
``fork``, ``exec``: seen through Python's audit hooks) fails and says to mark it
``@pytest.mark.processes``, so a new test cannot land in the wrong tier.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from botdialogs.testing.databases import wait_for_quiet_database
from botdialogs.testing.local_telegram import LocalTelegram
from botdialogs.testing.processes import AsgiServer
from botdialogs.testing.processes import server_env as make_server_env
from botdialogs.testing.session import RecordingSession, recording_bots

#: The plugin's own fixtures that start processes.
PROCESS_FIXTURES = frozenset({"asgi_server"})
#: Audit events of a new process (https://docs.python.org/3/library/audit_events.html).
SPAWN_EVENTS = frozenset(
    {"subprocess.Popen", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec"}
    | {"os.system"}
)


class ProcessInFastTest(RuntimeError):
    """A test of the fast tier started a process."""


# The fast test running now (its node id), or None: read by the audit hook.
_fast_test: str | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _fast_test is not None and event in SPAWN_EVENTS:
        raise ProcessInFastTest(
            f"{_fast_test} is in the fast tier but starts a process ({event} {args[:2]!r}): "
            "mark it @pytest.mark.processes, or list the fixture that starts it in the "
            "botdialogs_process_fixtures option"
        )


def pytest_addoption(parser: pytest.Parser) -> None:
    """The plugin's configuration options."""
    parser.addini("botdialogs_asgi_app", "The site's ASGI application (module:attribute)")
    parser.addini(
        "botdialogs_process_fixtures",
        "Fixtures that start processes: tests using them are marked 'processes'",
        type="linelist",  # type: ignore[maybe-unrecognized-str-typeform]
    )


def pytest_configure(config: pytest.Config) -> None:
    """Declare the tier markers and watch fast tests for new processes."""
    config.addinivalue_line(
        "markers", "processes: starts processes (servers, workers, a browser): not fast"
    )
    config.addinivalue_line(
        "markers", "slow: no process, but long (fuzzing, thousands of chats): not fast"
    )
    config.addinivalue_line("markers", "fast: not processes, not slow (applied automatically)")
    sys.addaudithook(_audit)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test ``processes`` or ``fast`` (see the module docstring)."""
    starting = PROCESS_FIXTURES | set(config.getini("botdialogs_process_fixtures"))
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("processes") is None and names & starting:
            item.add_marker(pytest.mark.processes)
        if not any(item.get_closest_marker(name) for name in ("processes", "slow")):
            item.add_marker(pytest.mark.fast)
        if _is_coroutine_test(item) and "thread_connections_closed" not in names:
            item.fixturenames.append("thread_connections_closed")  # type: ignore[attr-defined]


def _is_coroutine_test(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "obj", None))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Guard a fast test, from its setup to its teardown, against starting processes."""
    global _fast_test
    _fast_test = item.nodeid if item.get_closest_marker("fast") else None
    try:
        return (yield)
    finally:
        _fast_test = None


@pytest.fixture
def bot_api() -> Iterator[RecordingSession]:
    """The Bot API session of every Bot built during the test: records calls, no HTTP."""
    with recording_bots() as session:
        yield session


@pytest.fixture(scope="session")
def server_env(django_db_setup: None, django_db_blocker: Any) -> dict[str, str]:
    """The environment of a server process: this process's, on the test database."""
    from django.db import connection

    with django_db_blocker.unblock():
        return make_server_env(connection.settings_dict)


@pytest.fixture(scope="session")
def asgi_server(pytestconfig: pytest.Config, server_env: dict[str, str]) -> Iterator[AsgiServer]:
    """The site (``botdialogs_asgi_app``) on uvicorn, for the whole session."""
    app = pytestconfig.getini("botdialogs_asgi_app")
    if not app:
        raise pytest.UsageError("Set botdialogs_asgi_app (module:attribute) to use asgi_server")
    with AsgiServer(app, env=server_env) as server:
        yield server


@pytest.fixture
def local_telegram(transactional_db: None, asgi_server: AsgiServer) -> Iterator[LocalTelegram]:
    """Local Telegram on the site's server, for one test on the transactional test database."""
    yield LocalTelegram(asgi_server.url)
    wait_for_quiet_database()


@pytest.fixture
async def thread_connections_closed() -> AsyncIterator[None]:
    """After the test, close the database connections opened in asgiref's thread."""
    yield
    from django.db import connections

    # Thread-sensitive: runs in the thread whose connections sync_to_async calls opened.
    await sync_to_async(connections.close_all)()
