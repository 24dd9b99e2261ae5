"""Background actions exactly once, in effect: the action turns "done" with its state.

A worker that died mid-action leaves no "done" behind, so the next attempt performs it at
once (no stale-claim timeout); a failed commit rolls the state back and the retry counts; two
attempts at the same time perform it once.
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.db import OperationalError

from botdialogs import background
from botdialogs.background import performing
from botdialogs.engine import bots
from botdialogs.exceptions import StorageUnavailable
from botdialogs.models import BackgroundAction
from botdialogs.testing import RecordingSession
from tests.background import test_background as probe
from tests.background.test_background import CHAT, feed, top_data

session = probe.session  # the probe bot's recording session fixture

pytestmark = pytest.mark.django_db(transaction=True)


def update_action(n: int) -> dict[str, Any]:
    return background.build_action("update", "default", CHAT, CHAT, data={"n": n})


def test_an_action_left_running_by_a_dead_worker_is_performed_at_once(
    session: RecordingSession,
) -> None:
    feed("/start")
    action = update_action(5)
    assert performing.note_attempt(action)  # the first worker got this far, then died
    session.calls.clear()

    assert performing.perform_recorded(action) == performing.PERFORMED
    assert performing.perform_recorded(action) == performing.DUPLICATE
    assert session.texts() == ["main n=5"]
    record = BackgroundAction.objects.get(action_id=action["id"])
    assert (record.status, record.attempts) == ("done", 2)


def test_a_failed_commit_is_retried_and_counts_once(session: RecordingSession) -> None:
    feed("/start")
    action = update_action(7)
    database = bots.get_storage().database  # type: ignore[attr-defined]

    async def failing_commit(transaction: Any, plan: Any) -> None:
        await database.rollback(transaction)
        raise OperationalError("the server went away")

    with mock.patch.object(database, "commit", failing_commit), pytest.raises(StorageUnavailable):
        performing.perform_recorded(action)
    record = BackgroundAction.objects.get(action_id=action["id"])
    assert record.status == "retry"
    assert top_data().get("n", 0) == 0  # nothing of the first attempt was stored

    assert performing.perform_recorded(action) == performing.PERFORMED
    assert top_data()["n"] == 7
    record.refresh_from_db()
    assert (record.status, record.attempts) == ("done", 2)


def test_two_attempts_at_once_perform_it_once(session: RecordingSession) -> None:
    feed("/start")
    action = update_action(9)
    session.calls.clear()

    async def both() -> list[str]:
        outcomes = await asyncio.gather(
            performing.aperform_recorded(action), performing.aperform_recorded(action)
        )
        await sync_to_async(lambda: None)()
        return list(outcomes)

    outcomes = async_to_sync(both)()
    assert sorted(outcomes) == [performing.DUPLICATE, performing.PERFORMED]
    assert session.texts() == ["main n=9"]
