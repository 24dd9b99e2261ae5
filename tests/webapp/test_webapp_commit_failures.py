"""A Mini App request whose dialog action fails at commit answers 5xx, and the page's retry
(same Idempotency-Key) changes the dialog once.

The action is performed inline after the view's transaction commits; the fault is at the
storage backend's commit and rollback (:mod:`tests.support.faults`). PostgreSQL in the
second CI pass, SQLite in the first.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client, override_settings
from django.urls import path

from botdialogs import webapp
from botdialogs.testing import RecordingSession, recording_bots
from tests.background.test_background import CHAT, feed, top_data
from tests.support.faults import FAULTS, failing_close, stored

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "123456:TEST-token-of-the-probe-bot"
SETTINGS = {
    "BOTS": {
        "default": {"TOKEN": TOKEN, "ROUTER": "tests.background.test_background.build_router"}
    },
    "BACKGROUND": "inline",
}


@webapp.telegram_web_app(bot="default")
def bump(request: HttpRequest) -> JsonResponse:
    """The page's one action: show n=5 in the user's dialog, once per request key."""
    webapp.update(request, {"n": 5})
    return JsonResponse({"ok": True})


urlpatterns = [path("bump/", bump)]


@pytest.fixture
def session() -> Iterator[RecordingSession]:
    with (
        recording_bots() as recording,
        override_settings(BOTDIALOGS=SETTINGS, ROOT_URLCONF=__name__),
    ):
        yield recording


def post(key: str) -> int:
    init_data = webapp.sign_init_data(
        {"user": {"id": CHAT, "first_name": "Ann"}, "chat_type": "private"}, TOKEN
    )
    client = Client(raise_request_exception=False)
    response = client.post(
        "/bump/",
        json.dumps({}),
        "application/json",
        HTTP_AUTHORIZATION=f"tma {init_data}",
        HTTP_IDEMPOTENCY_KEY=key,
    )
    return response.status_code


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failure_at_commit_answers_5xx_and_the_pages_retry_changes_the_dialog_once(
    session: RecordingSession, fault: str
) -> None:
    feed("/start")
    key = f"page-action-{fault}"
    session.calls.clear()
    with failing_close(fault) as injected:
        first = post(key)
    assert injected == [fault]
    # Unless COMMIT got through (then the action is done: 200), the page is told to retry.
    assert first == (200 if stored(fault) else 500)
    assert top_data().get("n", 0) == (5 if stored(fault) else 0)

    sent = len(session.texts())
    assert post(key) == 200  # the page's retry
    assert post(key) == 200  # and one more
    assert session.texts()[sent:] == ([] if stored(fault) else ["main n=5"])
    assert top_data()["n"] == 5
