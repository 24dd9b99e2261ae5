"""A web process whose ASGI application never starts the in-process timer firer is told so,
once, at its first webhook delivery; one that routes the lifespan to botdialogs is not."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.test import AsyncClient, override_settings

from botdialogs.engine import bots
from botdialogs.http.asgi import WebhookRoute
from botdialogs.testing import RecordingSession, message_update, recording_bots
from tests.http.test_exactly_once import COUNTER, SECRET, deliver

pytestmark = pytest.mark.django_db(transaction=True)

NO_FIRER = "Dialog timers will not fire"


def counter_with(timers_in_process: Any) -> dict[str, Any]:
    return {**COUNTER, "TIMERS_IN_PROCESS": timers_in_process}


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    with recording_bots() as recording:
        yield recording


async def deliver_to_view(update: dict[str, Any]) -> int:
    response = await AsyncClient().post(
        "/bots/default/webhook/",
        json.dumps(update),
        content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    return response.status_code


def warnings_in(caplog: pytest.LogCaptureFixture) -> int:
    return sum(NO_FIRER in record.getMessage() for record in caplog.records)


async def test_deliveries_without_a_lifespan_warn_once_that_timers_will_not_fire(
    session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="botdialogs.timers")
    with override_settings(BOTDIALOGS=counter_with(True)):
        for text in ("/start", "/start"):
            assert await deliver_to_view(message_update(7300, text)) == 200
        assert warnings_in(caplog) == 1
        await bots.get_storage().close()


async def test_no_warning_when_timers_are_not_fired_in_this_process(
    session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="botdialogs.timers")
    with override_settings(BOTDIALOGS=counter_with(False)):
        assert await deliver_to_view(message_update(7301, "/start")) == 200
        assert warnings_in(caplog) == 0
        await bots.get_storage().close()


async def test_no_warning_when_the_lifespan_started_the_firer(
    session: RecordingSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="botdialogs.timers")
    with override_settings(BOTDIALOGS=counter_with(True)):
        route = WebhookRoute(get_asgi_application())
        lifespan = ApplicationCommunicator(route, {"type": "lifespan"})
        await lifespan.send_input({"type": "lifespan.startup"})
        assert (await lifespan.receive_output(timeout=30))["type"] == "lifespan.startup.complete"
        try:
            assert (await deliver(route, message_update(7302, "/start")))[0] == 200
        finally:
            await lifespan.send_input({"type": "lifespan.shutdown"})
            done = await lifespan.receive_output(timeout=30)
        assert done["type"] == "lifespan.shutdown.complete"
        assert warnings_in(caplog) == 0
        await bots.get_storage().close()
