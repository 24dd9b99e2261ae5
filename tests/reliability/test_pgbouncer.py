"""Behind PgBouncer in transaction pooling (``PGBOUNCER=1``).

A client's server connection may change after every transaction there: session advisory
locks and prepared statements stop meaning anything. The demo dialog must still walk through
the real webhook, and two OS processes pressing one chat's button at once must still count
every press exactly once (the chat lock holds across processes).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from botdialogs.testing import AsgiServer, LocalTelegram
from botdialogs.testing.postgres import PgBouncer, PrivatePostgres
from tests.reliability.services import process_env
from tests.support.servers import APP

ROOT = Path(__file__).resolve().parents[2]

PRESSES = 200
#: Two processes of PRESSES presses finish in well under a minute; a broken lock hangs.
PRESS_TIMEOUT = 180


def test_the_demo_dialog_walks_through_pgbouncer(
    private_postgres: PrivatePostgres, private_database: str, pgbouncer: PgBouncer
) -> None:
    env = process_env(dict(os.environ), DATABASE_URL=pgbouncer.url(private_database), PGBOUNCER="1")
    with AsgiServer(APP, env={**env, "BOT_MODE": "inline"}) as server:
        chat = LocalTelegram(server.url).chat(user_id=9401, first_name="Pat")
        assert chat.send("/start")["webhook_status"] == 200
        chat.wait_for_text("Hello, Pat! What would you like to do?")
        for label in ("Order food", "Yes", "+ Pizza", "+ Soup", "+ Pizza"):
            assert chat.press(label)["webhook_status"] == 200
        cart = chat.wait_for(lambda message: message.text.startswith("Add something"))
        assert sorted(cart.text.splitlines()[1:]) == ["1 x Soup", "2 x Pizza"]
        assert chat.press("Finish")["webhook_status"] == 200
        placed = chat.wait_for(lambda message: message.text.endswith("placed. Thank you!"))
        assert chat.press("Back to menu")["webhook_status"] == 200
        chat.wait_for_text("Hello, Pat! What would you like to do?")

    with psycopg.connect(private_postgres.url(private_database)) as connection:
        orders = connection.execute(
            "SELECT id, items FROM shop_order WHERE telegram_user_id = 9401"
        ).fetchall()
        (state,) = connection.execute(
            "SELECT state FROM botdialogs_dialogstack WHERE chat_id = 9401 AND stack_id = ''"
        ).fetchone()
    assert orders == [(orders[0][0], {"Pizza": 2, "Soup": 1})]
    assert placed.text == f"Order #{orders[0][0]} placed. Thank you!"
    assert state == "MainMenu:menu"


def run_worker(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m tests.isolation_worker ...`` (the counter bot fed in-process)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.isolation_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def finish(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for a worker; kill it and fail if it hangs or fails."""
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"Presses hung for {timeout}s behind PgBouncer:\n{output.decode()[-3000:]}")
    assert process.returncode == 0, output.decode()[-3000:]


def test_two_processes_count_every_press_through_pgbouncer(
    private_postgres: PrivatePostgres, private_database: str, pgbouncer: PgBouncer
) -> None:
    chat_id = 9402
    env = {**os.environ, "DATABASE_URL": pgbouncer.url(private_database), "PGBOUNCER": "1"}
    finish(run_worker("start", str(chat_id), env=env), timeout=60)
    direct = private_postgres.url(private_database)
    with psycopg.connect(direct) as connection:
        intents, message_id = connection.execute(
            "SELECT intents, last_message_id FROM botdialogs_dialogstack WHERE chat_id = %s",
            (chat_id,),
        ).fetchone()

    press = ("press", str(chat_id), f"{intents[-1]}\x1dinc", str(message_id), str(PRESSES))
    workers = [run_worker(*press, env=env) for _ in range(2)]
    for worker in workers:
        finish(worker, timeout=PRESS_TIMEOUT)

    with psycopg.connect(direct) as connection:
        (dialog_data,) = connection.execute(
            "SELECT dialog_data FROM botdialogs_dialogcontext WHERE chat_id = %s", (chat_id,)
        ).fetchone()
    assert dialog_data == {"count": 2 * PRESSES}
