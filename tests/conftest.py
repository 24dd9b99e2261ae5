"""Shared fixtures. Services (PostgreSQL, Redis) are the real ones when DATABASE_URL/REDIS_URL
are set, as in the second CI pass; with nothing set the tests run on SQLite.

The test kit's pytest plugin (botdialogs.testing.pytest_plugin, enabled in pyproject.toml's
addopts) sorts the tests into tiers: ``-m fast`` starts no process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiogram import Bot

from botdialogs.engine import bots
from botdialogs.testing import RecordingSession


@pytest.fixture(autouse=True)
def _fresh_registry() -> Iterator[None]:
    """Each test builds its own Dispatchers and storage (settings may differ per test)."""
    bots.reset()
    yield
    bots.reset()


@pytest.fixture(autouse=True)
def _fast_password_hasher(request: pytest.FixtureRequest) -> Iterator[None]:
    """A fast test hashes passwords with MD5: PBKDF2's million rounds took most of the fast
    tier's time (every admin_client makes a superuser). Only there: no other process reads
    its hashes, while a server a test signs in to hashes with the site's own settings."""
    if request.node.get_closest_marker("fast") is None:
        yield
        return
    settings = request.getfixturevalue("settings")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    yield


@pytest.fixture
def recording_bot() -> Bot:
    """The default bot with an in-memory session that records Bot API calls."""
    return Bot(bots.bot_token("default"), session=RecordingSession())


# End-to-end servers (uvicorn, Celery worker) for the webhook and local Telegram tests.
from tests.support.servers import (  # noqa: E402, F401
    celery_worker,
    eager_queued_server,
    eager_queued_server_process,
    inline_server,
    inline_server_process,
    redis_env,
    redis_queued_server,
    test_db_env,
)


@pytest.fixture
def fresh_channel_layers() -> Iterator[None]:
    """Channel layers made afresh for this test, and dropped after it.

    A channel layer is a process-wide object; channels-redis binds its connections and its
    receive lock to the event loop that first used them, and each async test has a loop of
    its own: a layer left from another test's loop is not this test's to use.
    """
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Compile the demo's catalogs before any test runs (msgfmt is a process of its own, so
    inside a fast test the tier guard would refuse it); the fixture then finds them fresh."""
    from tests.support.i18n_catalogs import ensure_compiled

    ensure_compiled()
