"""A German user's food order through real workers: updates queued to a Celery worker,
a background action sent from this process over Redis, a timer fired by beat and a worker."""

from __future__ import annotations

import pytest
from django.utils import translation

from botdialogs import background, timers
from botdialogs.models import TelegramChat
from botdialogs.testing import AsgiServer, CeleryBeat, LocalTelegram, wait_until
from tests.background.test_background_workers import TIMEOUT, celery_sender  # noqa: F401
from tests.support.i18n_catalogs import compiled_catalogs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("compiled_catalogs")]
USER = 9301


@pytest.mark.usefixtures("celery_worker", "celery_sender")
def test_a_german_order_through_a_celery_worker_and_a_timer(
    redis_queued_server: AsgiServer, redis_env: dict[str, str]
) -> None:
    chat = LocalTelegram(redis_queued_server.url).chat(
        user_id=USER, first_name="Hans", language_code="de"
    )
    chat.send("/start")  # queued: the worker runs the handler
    chat.wait_for_text("Hallo, Hans! Was möchtest du tun?", timeout=TIMEOUT)
    wait_until(lambda: TelegramChat.objects.filter(chat_id=USER).exists(), timeout=TIMEOUT)

    with translation.override("en"):  # site code in English: the action carries no language
        background.start("default", USER, USER, "FoodOrder:hungry")
    chat.wait_for_text("Hast du Hunger?", timeout=TIMEOUT)

    chat.press("Ja")
    chat.wait_for_text("Leg etwas in deinen Warenkorb:\nDein Warenkorb ist leer.", timeout=TIMEOUT)
    chat.press("+ Pizza")
    chat.wait_for_text("Leg etwas in deinen Warenkorb:\n1 x Pizza", timeout=TIMEOUT)
    chat.press("+ Pizza")
    chat.wait_for_text("Leg etwas in deinen Warenkorb:\n2 x Pizzen", timeout=TIMEOUT)

    # A dialog timer: beat's tick has a worker fire it, in the chat's language.
    background.start("default", USER, USER, "FoodOrder:hungry")
    chat.wait_for_text("Hast du Hunger?", timeout=TIMEOUT)
    timers.schedule("default", USER, USER, "update", after=1, data={"reminded": True})
    with CeleryBeat("project", env={**redis_env, "LOCAL_TELEGRAM_URL": redis_queued_server.url}):
        chat.wait_for_text("Immer noch hungrig?", timeout=TIMEOUT)
