"""A background action whose unit of work fails to close is retried, never recorded as done
or rejected, and the retry performs it once: the Celery task (run as a worker runs it) and
the Channels consumer (which sends it to the channel again: the layer has no redelivery).

Faults at the storage backend's commit and rollback (:mod:`tests.support.faults`), after the
action's handlers finished well. PostgreSQL in the second CI pass, SQLite in the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from celery.exceptions import Retry
from django.test import override_settings

from botdialogs import background
from botdialogs.background import transport
from botdialogs.consumers import BackgroundActionConsumer
from botdialogs.engine import bots
from botdialogs.models import BackgroundAction
from botdialogs.testing import RecordingSession
from tests.background import test_background as probe
from tests.background.test_background import CHAT, feed, top_data
from tests.support.faults import FAULTS, failing_close, stored

session = probe.session  # the probe bot's recording session fixture

pytestmark = pytest.mark.django_db(transaction=True)


def update_action(n: int) -> dict[str, Any]:
    return background.build_action("update", "default", CHAT, CHAT, data={"n": n})


def status(action: dict[str, Any]) -> str:
    return BackgroundAction.objects.get(action_id=action["id"]).status


def run_task(action: dict[str, Any]) -> str:
    """Run the Celery task once, as a worker would: its outcome, or "retry"."""
    from botdialogs.tasks import perform_background_action

    try:
        return str(perform_background_action.apply(args=(action,)).get())
    except Retry:  # eager tasks propagate what they raise (CELERY_TASK_EAGER_PROPAGATES)
        return "retry"


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_at_commit_in_the_celery_task_is_retried_and_performed_once(
    session: RecordingSession, fault: str
) -> None:
    feed("/start")
    action = update_action(7)
    session.calls.clear()
    with failing_close(fault) as injected:
        # Retried; unless COMMIT got through: then the action's row says "done" already.
        assert run_task(action) == ("duplicate" if stored(fault) else "retry")
    assert injected == [fault]
    assert status(action) == ("done" if stored(fault) else "retry")  # never "rejected"
    assert top_data().get("n", 0) == (7 if stored(fault) else 0)

    first = len(session.texts())
    expected = "duplicate" if stored(fault) else "performed"
    assert run_task(action) == expected  # the retry
    assert run_task(action) == "duplicate"  # and a redelivery
    assert session.texts()[first:] == ([] if stored(fault) else ["main n=7"])
    assert (status(action), top_data()["n"]) == ("done", 7)


@pytest.fixture
def in_memory_layer(fresh_channel_layers: None) -> Iterator[None]:
    """BACKGROUND "channels" on channels' in-memory layer, in this process."""
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    with override_settings(CHANNEL_LAYERS=layers):
        yield


@pytest.mark.parametrize("fault", [fault for fault in FAULTS if not stored(fault)])
async def test_a_failure_at_commit_in_the_channels_consumer_is_sent_again_and_performed_once(
    session: RecordingSession,
    in_memory_layer: None,
    fault: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """("committed" is left out: its row is "done" at once, and nothing is sent again.)"""
    from channels.layers import get_channel_layer

    monkeypatch.setattr(transport, "RETRY_DELAYS", (0.0,) * len(transport.RETRY_DELAYS))
    await sync_to_async(feed)("/start")
    action = update_action(8)
    layer = get_channel_layer()
    assert layer is not None
    consumer = BackgroundActionConsumer()
    await transport.send_to_channel(action)
    with failing_close(fault) as injected:
        await consumer.background_action(await layer.receive(transport.CHANNEL_NAME))
    assert injected == [fault]
    assert await sync_to_async(status)(action) == "retry"

    sent = len(session.texts())
    again = await layer.receive(transport.CHANNEL_NAME)  # the consumer sent it once more
    assert (again["action"], again["attempt"]) == (action, 1)
    await consumer.background_action(again)
    assert session.texts()[sent:] == ["main n=8"]
    assert await sync_to_async(status)(action) == "done"
    assert (await sync_to_async(top_data)())["n"] == 8
    await bots.get_storage().close()
