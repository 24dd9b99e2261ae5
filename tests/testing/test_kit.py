"""The test kit a site uses (botdialogs.testing): the recording Bot API session behind the
registry's public seam, the update builders, and the tiers its pytest plugin keeps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from botdialogs.engine import bots
from botdialogs.models import DialogStack
from botdialogs.testing import (
    RecordingSession,
    as_update,
    callback_update,
    message_update,
    recording_bots,
)

pytestmark = pytest.mark.django_db(transaction=True)
COUNTER = {"BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}}}
CHAT = 5301
ROOT = Path(__file__).resolve().parents[2]


async def _feed(update: dict[str, Any]) -> None:
    async with bots.bot_scope():
        bot = bots.get_bot("default")
        await bots.get_dispatcher("default").feed_update(bot, as_update(update))


def feed(update: dict[str, Any]) -> None:
    """Feed one update to the default bot through the registry's own Bot and Dispatcher."""
    async_to_sync(_feed)(update)


def test_bot_api_records_what_the_registry_bots_send(
    bot_api: RecordingSession, settings: Any
) -> None:
    settings.BOTDIALOGS = COUNTER
    feed(message_update(CHAT, "/start"))
    stack = DialogStack.objects.get(chat_id=CHAT)
    feed(callback_update(CHAT, f"{stack.intents[-1]}\x1dinc", stack.last_message_id))
    assert bot_api.texts() == ["Count: 0", "Count: 1"]


def test_recording_bots_gives_the_real_session_back(settings: Any) -> None:
    settings.BOTDIALOGS = COUNTER
    with recording_bots() as recording:
        feed(message_update(CHAT, "/start"))
    assert recording.texts() == ["Count: 0"]
    # Outside the block the registry builds real Bots again, talking HTTP.
    assert bots.set_session_factory(None) is None


def test_builders_give_new_ids_unless_told() -> None:
    first, second = message_update(CHAT, "a"), message_update(CHAT, "b")
    assert first["update_id"] != second["update_id"]
    assert first["message"]["message_id"] != second["message"]["message_id"]
    assert message_update(CHAT, "c", update_id=77)["update_id"] == 77
    assert as_update(callback_update(CHAT, "x")).callback_query.data == "x"


@pytest.mark.processes  # runs pytest in a subprocess
def test_a_fast_test_that_starts_a_process_fails_and_says_how_to_mark_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(
        """
        import subprocess, sys
        import pytest

        def test_unmarked():
            subprocess.run([sys.executable, "-c", "pass"], check=True)

        @pytest.mark.processes
        def test_marked():
            subprocess.run([sys.executable, "-c", "pass"], check=True)
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "botdialogs.testing.pytest_plugin", "-p", "no:django", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_unmarked is in the fast tier but starts a process*"])
    assert "mark it @pytest.mark.processes" in result.stdout.str()


async def test_an_async_test_has_its_thread_connections_closed(
    request: pytest.FixtureRequest,
) -> None:
    # Not asked for here: the plugin adds it to every async def test.
    assert "thread_connections_closed" in request.fixturenames


def test_a_sync_test_is_left_alone(request: pytest.FixtureRequest) -> None:
    assert "thread_connections_closed" not in request.fixturenames


def test_process_env_drops_what_it_is_told_and_names_the_settings() -> None:
    from botdialogs.testing import process_env

    base = {"REDIS_URL": "redis://x", "PATH": "/bin", "DJANGO_SETTINGS_MODULE": "old"}
    env = process_env(base, "site.settings", drop=["REDIS_URL"], BOT_MODE="queued")
    assert env == {
        "PATH": "/bin",
        "DJANGO_SETTINGS_MODULE": "site.settings",
        "PYTHONUNBUFFERED": "1",
        "BOT_MODE": "queued",
    }
    # extra may give a dropped variable back (a test's own broker).
    assert process_env(base, "s", drop=["REDIS_URL"], REDIS_URL="redis://y")["REDIS_URL"] == (
        "redis://y"
    )
    assert base["REDIS_URL"] == "redis://x"  # the caller's mapping is left as it was
