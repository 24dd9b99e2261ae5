"""Queued mode: a Celery worker killed with SIGKILL in the middle of an update's task.

The ``gate`` bot's handler waits at a gate the test controls, so the kill lands while the
task runs, never before or after it. The update must then be handled exactly once, by a
second worker (the whole worker died: Redis hands the unacknowledged task out again after
the visibility timeout) or by the same worker's next pool child (only the child died: the
task is rejected back to the queue, ``reject_on_worker_lost``).
"""

from __future__ import annotations

import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.scenarios import steps_of
from botdialogs.testing import AsgiServer, CeleryWorker, message_update, wait_until
from botdialogs.testing.processes import alive
from botdialogs.testing.queues import broker_idle
from botdialogs.testing.webhook import post_update
from tests.reliability.bots import entered_markers, marker_pid, open_gate
from tests.reliability.services import queued_env
from tests.support.servers import APP, WEBHOOK_SECRET

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.processes]

#: CELERY_VISIBILITY_TIMEOUT of these tests' processes (seconds).
VISIBILITY = 5
#: A worker starts in a few seconds on a busy machine; redelivery needs the timeout on top.
REDELIVERY_BOUND = VISIBILITY + 60


def handled_once(chat_id: int, broker: str, queue: str, killed_at: float, timeout: float) -> float:
    """Wait until the chat's update is handled and the queue is empty; returns the seconds
    since the kill. Fails if the update was lost or handled twice."""
    try:
        wait_until(lambda: steps_of([chat_id]).get(chat_id), timeout=timeout)
    except TimeoutError:
        pytest.fail(f"The update was lost: not handled within {timeout}s of the kill")
    took = time.monotonic() - killed_at
    wait_until(lambda: broker_idle(broker, queue), timeout=60)
    assert steps_of([chat_id])[chat_id] == [1], "handled more than once"
    return took


def test_a_worker_killed_mid_task_leaves_the_update_to_another_worker(
    test_db_env: dict[str, str], broker: str, queue: str, gate_dir: Path
) -> None:
    chat_id = 9101
    env = queued_env(
        test_db_env,
        broker,
        queue,
        RELIABILITY_GATE_DIR=str(gate_dir),
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY),
    )
    with ExitStack() as running:
        server = running.enter_context(AsgiServer(APP, env=env))
        worker_env = {**env, "LOCAL_TELEGRAM_URL": server.url}
        first = running.enter_context(CeleryWorker("project", env=worker_env, name="first@%h"))
        update = message_update(chat_id, "gate", update_id=910_100)
        assert post_update(f"{server.url}/bots/gate/webhook/", update, WEBHOOK_SECRET).accepted

        marker = wait_until(lambda: entered_markers(gate_dir), timeout=60)[0]
        assert marker_pid(marker) == first.pid  # the solo pool runs the task in the worker
        first.kill()
        killed_at = time.monotonic()
        open_gate(gate_dir)
        running.enter_context(CeleryWorker("project", env=worker_env, name="second@%h"))

        took = handled_once(chat_id, broker, queue, killed_at, timeout=REDELIVERY_BOUND)
        assert marker_pid(entered_markers(gate_dir)[0]) == first.pid
        assert len(entered_markers(gate_dir)) == 2  # killed once, handled once
        assert VISIBILITY <= took < REDELIVERY_BOUND


def test_a_killed_pool_child_gives_its_task_back(
    test_db_env: dict[str, str], broker: str, queue: str, gate_dir: Path
) -> None:
    chat_id = 9102
    env = queued_env(
        test_db_env,
        broker,
        queue,
        RELIABILITY_GATE_DIR=str(gate_dir),
        CELERY_VISIBILITY_TIMEOUT=str(VISIBILITY),
    )
    with ExitStack() as running:
        server = running.enter_context(AsgiServer(APP, env=env))
        worker = running.enter_context(
            CeleryWorker(
                "project",
                env={**env, "LOCAL_TELEGRAM_URL": server.url},
                pool="prefork",
                concurrency=1,
            )
        )
        update = message_update(chat_id, "gate", update_id=910_200)
        assert post_update(f"{server.url}/bots/gate/webhook/", update, WEBHOOK_SECRET).accepted

        child = marker_pid(wait_until(lambda: entered_markers(gate_dir), timeout=60)[0])
        assert child != worker.pid
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_until(lambda: not alive(child), timeout=30)
        open_gate(gate_dir)

        # Rejected back to the queue at once: no visibility timeout to wait for.
        assert handled_once(chat_id, broker, queue, killed_at, timeout=30) < VISIBILITY + 30
        assert worker.running
        assert len(entered_markers(gate_dir)) == 2
