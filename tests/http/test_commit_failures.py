"""A failure while an update's unit of work closes is never a handler's bug: 5xx, then once.

The handlers finished well; the storage backend's commit or rollback failed (faults of
:mod:`tests.support.faults`). The webhook must answer 5xx (through the lean ASGI route and
through Django's view), and Telegram's redelivery must be handled once: state committed,
update id committed, the message sent by the redelivery, and nothing more on a third
delivery. The queued mode's Celery task retries instead. PostgreSQL in the second CI pass,
SQLite in the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Router
from aiogram.types import ErrorEvent
from asgiref.sync import async_to_sync
from django.test import AsyncClient, override_settings

from botdialogs.engine import bots
from botdialogs.http.asgi import WebhookRoute
from botdialogs.testing import RecordingSession, message_update, recording_bots
from botdialogs.testing.bots import counter_router
from tests.http.test_exactly_once import (
    COUNTER,
    SECRET,
    count,
    deliver,
    press_of,
    processed,
    route,
    session,
    started,
)
from tests.support.faults import FAULTS, failing_close, stored

pytestmark = pytest.mark.django_db(transaction=True)

__all__ = ["route", "session"]  # fixtures of test_exactly_once, used here

DONE = "Count: 1"


async def deliver_by(transport: str, route: WebhookRoute, update: dict[str, Any]) -> int:
    """Deliver through the lean ASGI route or through Django's webhook view; the status."""
    if transport == "asgi":
        return (await deliver(route, update))[0]
    response = await AsyncClient().post(
        "/bots/default/webhook/",
        json.dumps(update),
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    return response.status_code


@pytest.mark.parametrize("transport", ["asgi", "view"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failure_at_commit_answers_5xx_and_the_redelivery_is_handled_once(
    route: WebhookRoute, session: RecordingSession, fault: str, transport: str
) -> None:
    await started(route)
    press = await press_of("inc")
    with failing_close(fault) as injected:
        status = await deliver_by(transport, route, press)
    assert injected == [fault]
    assert status == 503
    first = (1, 1) if stored(fault) else (0, 0)  # nothing stored, unless COMMIT was sent
    assert (await count(), await processed(press)) == first

    before = len(session.texts())
    assert await deliver_by(transport, route, press) == 200
    assert (await count(), await processed(press)) == (1, 1)
    # The redelivery shows the count, unless the first attempt's commit got through.
    assert session.texts()[before:] == ([] if stored(fault) else [DONE])

    assert await deliver_by(transport, route, press) == 200
    assert session.texts()[before:] == ([] if stored(fault) else [DONE])
    assert (await count(), await processed(press)) == (1, 1)


async def swallow(event: ErrorEvent) -> None:
    """A site's catch-all error handler: logs and returns, so aiogram calls it handled."""


def swallowing_router() -> Router:
    """The counter bot with a catch-all error handler, as many sites have."""
    router = counter_router()
    router.errors.register(swallow)
    return router


SWALLOWING = {
    "BOTS": {"default": {**COUNTER["BOTS"]["default"], "ROUTER": f"{__name__}.swallowing_router"}}
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_failure_at_commit_swallowed_by_an_error_handler_still_answers_5xx(
    route: WebhookRoute, session: RecordingSession, fault: str
) -> None:
    with override_settings(BOTDIALOGS=SWALLOWING):
        bots.reset()
        await started(route)
        press = await press_of("inc")
        with failing_close(fault):
            assert (await deliver(route, press))[0] == 503
        assert await processed(press) == (1 if stored(fault) else 0)

        assert await deliver(route, press) == (200, {})
        assert (await count(), await processed(press)) == (1, 1)
        await bots.get_storage().close()


# -- the queued mode's task --------------------------------------------------------------------


QUEUED = {"BOTS": {"default": {**COUNTER["BOTS"]["default"], "MODE": "queued"}}}


@pytest.fixture
def queued() -> Iterator[RecordingSession]:
    """The counter bot in queued mode (its Celery task runs eagerly here)."""
    with override_settings(BOTDIALOGS=QUEUED), recording_bots() as recording:
        yield recording


def run_task(update: dict[str, Any]) -> str:
    """Run the queued mode's task once, as a worker would: "SUCCESS" or "RETRY"."""
    from celery.exceptions import Retry

    from botdialogs.tasks import process_update

    try:
        result = process_update.apply(args=("default", update))
    except Retry:  # eager tasks propagate what they raise (CELERY_TASK_EAGER_PROPAGATES)
        return "RETRY"
    return str(result.state)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_at_commit_in_the_queued_task_is_retried_and_handled_once(
    queued: RecordingSession, fault: str
) -> None:
    assert run_task(message_update(7100, "/start")) == "SUCCESS"
    press = async_to_sync(press_of)("inc")
    with failing_close(fault) as injected:
        assert run_task(press) == "RETRY"
    assert injected == [fault]
    assert async_to_sync(processed)(press) == (1 if stored(fault) else 0)

    before = len(queued.texts())
    assert run_task(press) == "SUCCESS"  # the retry
    assert run_task(press) == "SUCCESS"  # and a redelivery of the same update
    assert queued.texts()[before:] == ([] if stored(fault) else [DONE])
    assert (async_to_sync(count)(), async_to_sync(processed)(press)) == (1, 1)
