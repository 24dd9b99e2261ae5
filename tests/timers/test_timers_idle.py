"""An idle timer firer asks the database nothing, and still hears of timers from anywhere
(botdialogs.timers.wakeups).

The in-process firer runs on a loop of its own thread, as the web server's lifespan runs it.
Its ticks are counted where it asks whether the tick is quiet; its statements are counted
where they arrive: at the PostgreSQL server through the counting proxy (on PostgreSQL runs),
and as Django sends them (every run). A timer scheduled by another process then fires.
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, connections
from django.db.backends.signals import connection_created

from botdialogs import timers
from botdialogs.engine import bots
from botdialogs.models import DialogTimer
from botdialogs.testing import RecordingSession, database_url, wait_until
from botdialogs.testing.round_trips import Counts, RoundTripProxy
from botdialogs.timers import firing, wakeups
from tests.background.test_background import CHAT, feed, top_data
from tests.timers.test_timers import session  # noqa: F401 - the timers bot, recorded

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
#: Seconds per tick of the firer under test (short: the test counts ticks, not seconds).
TICK = 0.05
#: Ticks before counting: the first ones read the next due time into the cache.
WARM_UP_TICKS = 3
#: Idle ticks counted.
IDLE_TICKS = 20


def test_a_wake_up_heard_during_a_read_is_kept_over_the_reads_answer() -> None:
    cache = wakeups.NextDue()
    assert not cache.quiet_for(1.0)  # unknown: ask
    cache.begin_read()
    cache.heard(time.time() + 0.5)  # committed after the read's snapshot
    cache.end_read(time.time() + 3600)
    assert not cache.quiet_for(1.0)
    cache.begin_read()
    cache.end_read(None)
    assert cache.due() == math.inf and cache.quiet_for(3600)
    version = cache.version()
    cache.heard(time.time() + 10)
    assert cache.version() != version and cache.quiet_for(5) and not cache.quiet_for(10)
    cache.forget()
    assert cache.due() is None and not cache.quiet_for(0)


class FirerThread(threading.Thread):
    """``run_in_process`` on a loop of its own, behind a counting proxy on PostgreSQL."""

    def __init__(self) -> None:
        super().__init__(name="idle-firer", daemon=True)
        self.ticks = 0
        self.ticked = threading.Condition()
        self.statements = 0  # as Django sends them, on the firer's connections
        self.proxy: RoundTripProxy | None = None
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        database = connection.settings_dict
        self.real = (database["HOST"] or "127.0.0.1", str(database["PORT"] or "5432"))

    def count_statement(self, execute: Any, sql: str, *args: Any) -> Any:
        self.statements += 1
        return execute(sql, *args)

    def on_connection(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if threading.current_thread() is not threading.main_thread():
            connection.execute_wrappers.append(self.count_statement)

    def wait_ticks(self, count: int) -> None:
        with self.ticked:
            target = self.ticks + count
            assert self.ticked.wait_for(lambda: self.ticks >= target, timeout=60), self.failure

    def server_statements(self) -> Counts:
        return self.proxy.totals() if self.proxy is not None else Counts()

    def run(self) -> None:
        try:
            asyncio.run(self.main())
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.failure = error
            self.ready.set()

    async def main(self) -> None:
        self.loop = asyncio.get_running_loop()
        database = connection.settings_dict  # the dict every thread's wrapper is built from
        real = self.real
        if connection.vendor == "postgresql":
            self.proxy = RoundTripProxy(real[0], int(real[1]))
            await self.proxy.__aenter__()
            database["HOST"], database["PORT"] = self.proxy.host, str(self.proxy.port)
        # The firer's ORM thread (asgiref's, shared by tests) connects afresh: through the
        # proxy, and seen by the counter.
        await sync_to_async(connections.close_all)()
        watch = await sync_to_async(wakeups.watching)()  # its listener connects via the loop
        quiet_for = watch.quiet_for

        def counted_quiet_for(seconds: float) -> bool:
            quiet = quiet_for(seconds)
            with self.ticked:
                self.ticks += 1
                self.ticked.notify_all()
            return quiet

        watch.quiet_for = counted_quiet_for  # type: ignore[method-assign]
        try:
            async with bots.bot_scope():
                self.task = asyncio.current_task()
                self.ready.set()
                await firing.run_in_process(TICK)
        except asyncio.CancelledError:
            pass
        finally:
            await sync_to_async(connections.close_all)()
            if self.proxy is not None:
                database["HOST"], database["PORT"] = real
                await self.proxy.__aexit__(None, None, None)

    def stop(self) -> None:
        if self.loop is not None and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.join(30)


@pytest.fixture
def firer(session: RecordingSession) -> Iterator[FirerThread]:  # noqa: F811
    connection.ensure_connection()  # the test's own connection goes direct, not via the proxy
    thread = FirerThread()
    connection_created.connect(thread.on_connection)
    thread.start()
    try:
        assert thread.ready.wait(30) and thread.failure is None, thread.failure
        yield thread
    finally:
        thread.stop()
        connection_created.disconnect(thread.on_connection)


SCHEDULE = """
import django, sys
django.setup()
from botdialogs import timers
print(timers.schedule("default", {chat}, {chat}, "update", after=0, data={{"n": 41}}))
"""


def schedule_here() -> str:
    """A site's sync view in the firer's own process."""
    return timers.schedule("default", CHAT, CHAT, "update", after=0, data={"n": 41})


def schedule_in_another_process(firer: FirerThread) -> str:
    """A management command, a worker, another web process: any process but the firer's."""
    env = {"DJANGO_SETTINGS_MODULE": "project.settings", "PATH": "/usr/bin:/bin"}
    host, port = firer.real
    env["DATABASE_URL"] = database_url({**connection.settings_dict, "HOST": host, "PORT": port})
    done = subprocess.run(
        [sys.executable, "-c", SCHEDULE.format(chat=CHAT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(
    "where", ["this process", pytest.param("another process", marks=pytest.mark.processes)]
)
def test_an_idle_firer_asks_nothing_then_fires_a_timer_scheduled_anywhere(
    firer: FirerThread, where: str
) -> None:
    feed("/start")  # the chat has a dialog to update; before the count
    firer.wait_ticks(WARM_UP_TICKS)
    server_before, sent_before = firer.server_statements(), firer.statements

    firer.wait_ticks(IDLE_TICKS)

    idle_at_server = firer.server_statements() - server_before
    assert (idle_at_server.statements, idle_at_server.round_trips) == (0, 0)
    assert firer.statements - sent_before == 0
    assert firer.ticks >= WARM_UP_TICKS + IDLE_TICKS and firer.failure is None

    timer_id = schedule_here() if where == "this process" else schedule_in_another_process(firer)
    fired = DialogTimer.objects.filter(id=timer_id, status="fired")
    wait_until(fired.exists, timeout=60)
    assert top_data()["n"] == 41  # its action's effect, committed with its id
    assert firer.statements - sent_before > 0  # the count does see the firer's queries
