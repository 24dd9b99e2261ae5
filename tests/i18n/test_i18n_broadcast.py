"""One broadcast, each chat in its own language: the demo's translated window to a German, a
Russian and an English user, sent from site code (and ``manage.py broadcast``) in English."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiogram.methods import EditMessageText, SendMessage
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation
from django.utils.translation import gettext_lazy

from botdialogs.background import broadcast
from botdialogs.engine import bots
from botdialogs.exceptions import BadBackgroundAction
from botdialogs.models import TelegramChat
from botdialogs.testing import RecordingSession, message_update
from botdialogs.testing.session import recording_bots
from tests.support.i18n_catalogs import compiled_catalogs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("compiled_catalogs")]
SPEAKERS = {9401: "de", 9402: "ru", 9403: "en"}
HUNGRY = {9401: "Hast du Hunger?", 9402: "Вы голодны?", 9403: "Are you hungry?"}


@pytest.fixture
def session(settings: Any) -> Iterator[RecordingSession]:
    with (
        recording_bots() as recording,
        override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "BACKGROUND": "inline"}),
    ):
        yield recording


def said_hello(user_id: int, language_code: str) -> None:
    """``user_id`` sends /start from a Telegram app in ``language_code``."""
    update = message_update(user_id, "/start")
    update["message"]["from"]["language_code"] = language_code

    async def run() -> None:
        async with bots.bot_scope():
            await bots.get_dispatcher("default").feed_raw_update(bots.get_bot("default"), update)

    async_to_sync(run)()


def last_texts(session: RecordingSession) -> dict[int, str]:
    """The last text the bot sent (or edited in) in each chat."""
    sent = [c for c in session.calls if isinstance(c, SendMessage | EditMessageText) and c.text]
    return {int(c.chat_id): str(c.text) for c in sent}


@pytest.fixture
def speakers(session: RecordingSession) -> RecordingSession:
    for user_id, code in SPEAKERS.items():
        said_hello(user_id, code)
    session.calls.clear()
    return session


def test_one_broadcast_reaches_each_user_in_their_language(speakers: RecordingSession) -> None:
    chats = TelegramChat.objects.filter(chat_id__in=SPEAKERS)
    with translation.override("en"):  # the site's staff, in English
        sent = broadcast.create(chats, "start", state="FoodOrder:hungry", mode="reset_stack")
        done = broadcast.run(sent.pk)
        assert translation.get_language() == "en"
    assert (done.status, done.sent, done.failed) == ("done", 3, 0)
    assert last_texts(speakers) == HUNGRY


def test_the_broadcast_command_speaks_each_users_language(speakers: RecordingSession) -> None:
    with translation.override("de"):  # the command's own language is not the chats'
        call_command(
            "broadcast", "start", "--state", "FoodOrder:hungry", "--mode", "reset_stack",
            *[f"--chat={chat_id}" for chat_id in SPEAKERS],
        )  # fmt: skip
    assert last_texts(speakers) == HUNGRY


def test_a_lazy_translation_in_the_data_is_refused_with_the_way_out() -> None:
    chats = TelegramChat.objects.all()
    with pytest.raises(BadBackgroundAction, match=r"lazy translation.*Translated"):
        broadcast.create(chats, "start", state="FoodOrder:hungry", data={"t": gettext_lazy("Hi")})
    assert not broadcast.Broadcast.objects.exists()
