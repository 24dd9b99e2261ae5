"""Round trips to PostgreSQL per button press, counted at the server.

The counter dialog runs through ``botdialogs.engine.bots.get_dispatcher("default")`` with
DjangoStorage on PostgreSQL, its connections going through a counting proxy
(tests/pgproxy.py): the count includes connection setup, locks and transaction control, not
only the statements our code sends. On PostgreSQL runs the test database is used; on SQLite
runs the test makes a PostgreSQL database of its own (the configured test database name +
``_roundtrips``) and drops it at the end, so it runs in every CI pass.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from aiogram import Bot
from aiogram.methods import EditMessageText
from django.db import connections

from botdialogs.background import bg_manager
from botdialogs.background.claims import ActionClaim
from botdialogs.engine import bots
from botdialogs.engine.middleware import CLAIM
from botdialogs.http.claims import UpdateClaim
from botdialogs.storage import ClaimOutcome
from botdialogs.testing import RecordingSession, callback_update, message_update
from botdialogs.testing.round_trips import Counts, RoundTripProxy

#: Round trips of one press: lock, update of the claim and reads in one query string; writes,
#: COMMIT and unlock in another (6 before the rewrite: lock, pipelined reads, BEGIN, write,
#: COMMIT, unlock).
MAX_ROUND_TRIPS = 2
PRESSES = 10
# One press before counting opens the pool's connection; with prepared statements the first
# use on a connection prepares them in the same flight, so every later press costs the same.
WARM_UP_PRESSES = 1
ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("ISOLATION_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
ALIAS = "roundtrips"
CHAT = 777_001


def _admin_connection() -> psycopg.Connection[Any]:
    return psycopg.connect(f"{SERVER}/postgres", autocommit=True)


@pytest.fixture
def postgres_alias(transactional_db: None) -> Iterator[str]:
    """A Django database alias on PostgreSQL: the test database itself on PostgreSQL runs, a
    new, migrated database of its own otherwise (dropped afterwards)."""
    default = connections["default"]
    settings_dict = {**default.settings_dict, "TEST": {**default.settings_dict["TEST"]}}
    created = None
    if default.vendor != "postgresql":
        test_name = default.settings_dict["TEST"].get("NAME") or default.settings_dict["NAME"]
        created = f"{Path(str(test_name)).stem}_roundtrips"
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{created}"')
        server = urlsplit(SERVER)
        settings_dict.update(
            ENGINE="django.db.backends.postgresql",
            NAME=created,
            USER=server.username or "",
            PASSWORD=server.password or "",
            HOST=server.hostname or "127.0.0.1",
            PORT=str(server.port or 5432),
            OPTIONS={},
        )
        # In its own process: this test may not open Django connections to a second database.
        env = {**os.environ, "DATABASE_URL": f"{SERVER}/{created}"}
        migrate = [sys.executable, "manage.py", "migrate", "--verbosity", "0"]
        result = subprocess.run(migrate, cwd=ROOT, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    connections.settings[ALIAS] = settings_dict
    try:
        yield ALIAS
    finally:
        # Connection wrappers live in the context that made them (the async test's): none
        # may be left in this one. They never connected: the storage uses psycopg directly.
        with contextlib.suppress(AttributeError):
            del connections[ALIAS]
        del connections.settings[ALIAS]
        if created:
            with _admin_connection() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{created}" WITH (FORCE)')


@pytest.mark.processes  # migrates a database with manage.py
@pytest.mark.parametrize(
    "config",
    [{}, {"prepared_statements": True}],
    ids=["one-query-string", "prepared-statements"],
)
async def test_a_button_press_takes_at_most_max_round_trips(
    postgres_alias: str, settings: Any, config: dict[str, Any]
) -> None:
    database = connections.settings[postgres_alias]  # the dict its wrappers share
    real_server = (database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
    async with RoundTripProxy(*real_server) as proxy:
        # The storage (and its chat locks) read HOST/PORT from here whenever they connect.
        database["HOST"], database["PORT"] = proxy.host, str(proxy.port)
        try:
            settings.BOTDIALOGS = {
                "BOTS": {"default": {"ROUTER": "botdialogs.testing.bots.counter_router"}},
                "STORAGE": {
                    "BACKEND": "botdialogs.storage.DjangoStorage",
                    "CONFIG": {"using": postgres_alias, **config},
                },
            }
            dispatcher = bots.get_dispatcher("default")
            session = RecordingSession()
            bot = Bot(bots.bot_token("default"), session=session)
            await dispatcher.feed_raw_update(bot, message_update(CHAT, "/start"))
            data = session.calls[-1].reply_markup.inline_keyboard[0][0].callback_data

            per_press: list[Counts] = []
            for number in range(WARM_UP_PRESSES + PRESSES):
                update = callback_update(CHAT, data)
                # As the webhook does: the update's claim rides in the event data.
                claim = UpdateClaim(bot_name="default", update_id=update["update_id"])
                before = proxy.totals()
                await dispatcher.feed_raw_update(bot, update, **{CLAIM: claim})
                if number >= WARM_UP_PRESSES:
                    per_press.append(proxy.totals() - before)

            pressed = [call.text for call in session.calls if isinstance(call, EditMessageText)]
            # A background action: its id (the BackgroundAction row) commits with the state.
            action = {"bot": "default", "action": "update", "chat_id": CHAT, "user_id": CHAT}
            claim = ActionClaim(action_id="round-trips-action", action=action)
            before = proxy.totals()
            await bg_manager("default", CHAT, CHAT, bot=bot, claim=claim).update({"count": 0})
            per_action = proxy.totals() - before
            await bots.get_event_isolation().close()
            await bots.get_storage().close()
        finally:
            database["HOST"], database["PORT"] = real_server[0], str(real_server[1])

    assert pressed[-1] == f"Count: {WARM_UP_PRESSES + PRESSES}"  # every press went through
    round_trips = [counts.round_trips for counts in per_press]
    assert max(round_trips) <= MAX_ROUND_TRIPS, f"round trips per press: {round_trips}"
    assert claim.outcome is ClaimOutcome.TAKEN and session.texts()[-1] == "Count: 0"
    assert per_action.round_trips <= MAX_ROUND_TRIPS, f"round trips per action: {per_action}"
    assert all(counts.statements > 0 for counts in per_press)  # the proxy did see them
    # Warm pools: a press reuses connections, it never opens one.
    assert sum(counts.connections for counts in per_press) == 0


async def test_the_proxy_counts_flights_statements_and_connections() -> None:
    server = urlsplit(SERVER)
    async with RoundTripProxy(server.hostname or "127.0.0.1", server.port or 5432) as proxy:
        connection = await psycopg.AsyncConnection.connect(
            host=proxy.host,
            port=proxy.port,
            user=server.username or "postgres",
            dbname="postgres",
            autocommit=True,
            sslmode="disable",
        )
        assert proxy.totals() == Counts(round_trips=1, statements=0, connections=1)
        before = proxy.totals()
        await connection.execute("SELECT 1")
        await connection.execute("SELECT %s", (2,))
        assert proxy.totals() - before == Counts(round_trips=2, statements=2)
        before = proxy.totals()
        async with connection.pipeline():
            for number in range(3):
                await connection.execute("SELECT %s", (number,))
        assert proxy.totals() - before == Counts(round_trips=1, statements=3)
        before = proxy.totals()
        async with connection.transaction():  # BEGIN, the statement, COMMIT: one flight each
            await connection.execute("SELECT 1")
        assert proxy.totals() - before == Counts(round_trips=3, statements=3)
        await connection.close()
