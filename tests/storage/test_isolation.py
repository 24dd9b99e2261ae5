"""Event isolation across OS processes, on a real PostgreSQL server.

The test has a database of its own on the local PostgreSQL server (whatever the rest of the
run uses), so it runs in every CI pass: the point is two processes sharing one server.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiogram.fsm.storage.base import StorageKey

from botdialogs.storage.isolation import LocalEventIsolation, chat_lock_name
from botdialogs.testing.databases import scratch_database

ROOT = Path(__file__).resolve().parents[2]
CHAT = 4242


def _run(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _finish(process: subprocess.Popen[bytes]) -> None:
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output.decode()[-3000:]


@pytest.fixture(scope="module")
def isolated_database() -> Iterator[str]:
    with scratch_database("isolation") as url:
        env = {**os.environ, "DATABASE_URL": url}
        _finish(_run("manage.py", "migrate", "--verbosity", "0", env=env))
        yield url


@pytest.mark.processes  # migrates a database with manage.py
def test_two_processes_count_every_press_exactly_once(isolated_database: str) -> None:
    env = {**os.environ, "DATABASE_URL": isolated_database}
    _finish(_run("-m", "tests.support.isolation_worker", "start", str(CHAT), env=env))
    with psycopg.connect(isolated_database) as connection:
        intents, message_id = connection.execute(
            "SELECT intents, last_message_id FROM botdialogs_dialogstack WHERE chat_id = %s",
            (CHAT,),
        ).fetchone()
    data = f"{intents[-1]}\x1dinc"
    press = (
        "-m",
        "tests.support.isolation_worker",
        "press",
        str(CHAT),
        data,
        str(message_id),
        "500",
    )
    workers = [_run(*press, env=env) for _ in range(2)]
    for worker in workers:
        _finish(worker)

    with psycopg.connect(isolated_database) as connection:
        (dialog_data,) = connection.execute(
            "SELECT dialog_data FROM botdialogs_dialogcontext WHERE chat_id = %s", (CHAT,)
        ).fetchone()
    assert dialog_data == {"count": 1000}


async def test_local_isolation_serialises_one_chat_and_is_reentrant() -> None:
    isolation = LocalEventIsolation()
    key = StorageKey(bot_id=1, chat_id=2, user_id=3)
    other_user_same_chat = StorageKey(bot_id=1, chat_id=2, user_id=2, destiny="aiogd:stack:")
    assert chat_lock_name(key) == chat_lock_name(other_user_same_chat)
    order: list[str] = []
    first_inside = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        # The nested lock of the same chat in the same task does not deadlock.
        async with isolation.lock(key), isolation.lock(other_user_same_chat):
            order.append("first in")
            first_inside.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        await first_inside.wait()
        async with isolation.lock(other_user_same_chat):
            order.append("second in")

    tasks = [asyncio.create_task(first()), asyncio.create_task(second())]
    await first_inside.wait()
    await asyncio.sleep(0)  # let the second task reach the lock
    release_first.set()
    await asyncio.gather(*tasks)
    assert order == ["first in", "first out", "second in"]
