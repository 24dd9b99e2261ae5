"""Test kit: test a site's bot dialogs, from a unit test without any server to end to end
through local Telegram, in a few lines.

Unit test (no server): every Bot talks to a session that records its Bot API calls; updates
are built like Telegram's and fed to the bot's Dispatcher::

    from botdialogs.engine.bots import get_bot, get_dispatcher
    from botdialogs.testing import as_update, message_update, recording_bots

    async def test_start(transactional_db):
        with recording_bots() as bot_api:
            await get_dispatcher("default").feed_update(
                get_bot("default"), as_update(message_update(1001, "/start"))
            )
        assert bot_api.texts() == ["Hello, Ann! What would you like to do?"]

End to end: a simulated user writes and presses buttons; local Telegram turns that into a
real Update POSTed to the bot's real webhook view; the handlers call the Bot API of local
Telegram; the test reads back what the user would see. The server is a real ASGI server in a
subprocess, on the test database (a file or a server, not SQLite ``:memory:``). With the
pytest plugin (:mod:`botdialogs.testing.pytest_plugin`, which also sorts the tests into a
fast tier and one with processes)::

    pytest_plugins = ["botdialogs.testing.pytest_plugin"]   # conftest.py
    # pyproject.toml: [tool.pytest.ini_options] botdialogs_asgi_app = "mysite.asgi:application"

    def test_menu(local_telegram):
        chat = local_telegram.chat(user_id=1001, first_name="Ann")
        chat.send("/start")
        menu = chat.wait_for_text("Hello, Ann! What would you like to do?")
        assert ["Order food"] in menu.buttons
        chat.press("Order food")
        assert chat.wait_for_text("Are you hungry?").message_id == menu.message_id  # edited

Without the plugin, start the server yourself: ``server_env(connection.settings_dict)``
points a subprocess at the test database, ``AsgiServer("mysite.asgi:application", env=env)``
serves the site on a free port and at itself for local Telegram (``LOCAL_TELEGRAM_URL``);
queued bots need a Celery worker on the same environment: ``CeleryWorker("mysite", env=env)``.

Modules: :mod:`~botdialogs.testing.processes` (servers, workers), ``local_telegram`` (the
user side), ``session`` (the recording Bot API session), ``updates`` (update builders),
``webhook`` (delivering updates as Telegram does, with redelivery), ``databases`` (scratch
databases), ``postgres`` (a PostgreSQL server of a test's own, PgBouncer in front of it),
``queues`` (the test Redis broker), ``round_trips`` (a proxy counting round trips at
PostgreSQL or Redis), ``bots`` (small bots whose state tells what happened to them).
"""

from botdialogs.testing.local_telegram import (
    ChatMessage,
    LocalChatClient,
    LocalTelegram,
    LocalTelegramError,
)
from botdialogs.testing.processes import (
    AsgiServer,
    CeleryBeat,
    CeleryWorker,
    ListeningProcess,
    ManagedProcess,
    database_url,
    free_port,
    process_env,
    server_env,
    wait_until,
)
from botdialogs.testing.session import RecordingSession, recording_bots
from botdialogs.testing.updates import as_update, callback_update, message_update

__all__ = [
    "AsgiServer",
    "CeleryBeat",
    "CeleryWorker",
    "ChatMessage",
    "ListeningProcess",
    "LocalChatClient",
    "LocalTelegram",
    "LocalTelegramError",
    "ManagedProcess",
    "RecordingSession",
    "as_update",
    "callback_update",
    "database_url",
    "free_port",
    "message_update",
    "process_env",
    "recording_bots",
    "server_env",
    "wait_until",
]
