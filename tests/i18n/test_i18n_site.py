"""The site around the translated bot: the admin sets a chat's language (the chat follows),
the monitor shows it, makemessages finds the demo's texts, the menu of commands per language."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse

from botdialogs.engine import bots
from botdialogs.i18n.languages import LanguageSource, stored_chat_language
from botdialogs.localtg import botapi
from botdialogs.models import LanguageChosenBy, TelegramChat
from botdialogs.testing import AsgiServer, LocalTelegram, RecordingSession
from tests.i18n.test_i18n import send, shown
from tests.i18n.test_i18n import session as bot_session  # noqa: F401 - a fixture
from tests.monitor.test_monitor import has, no_watchers, receive_events, session_cookie, watch  # noqa: F401
from tests.support.i18n_catalogs import ROOT, catalogs, compiled_catalogs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("compiled_catalogs")]


def change_url(chat: TelegramChat) -> str:
    return reverse("admin:botdialogs_telegramchat_change", args=[chat.pk])


def test_the_admin_sets_a_language_and_the_chat_is_redrawn(
    admin_client: Client,
    bot_session: RecordingSession,  # noqa: F811 - the fixture imported above
) -> None:
    send(9201, "/start", "en")
    assert shown(bot_session) == "Hello, Ann! What would you like to do?"
    chat = TelegramChat.objects.get(chat_id=9201)
    page = admin_client.get(change_url(chat)).content.decode()
    assert "en-us (site default)" not in page and "en (Telegram app)" in page
    response = admin_client.post(
        change_url(chat), {"site_user": "", "language": "ru", "is_blocked": ""}
    )
    assert response.status_code == 302
    chat.refresh_from_db()
    assert (chat.language, chat.language_source) == ("ru", LanguageChosenBy.ADMIN)
    # The open menu, redrawn from the background in Russian (a background event has no name).
    assert shown(bot_session) == "Привет, друг! Что вы хотите сделать?"
    listing = admin_client.get(reverse("admin:botdialogs_telegramchat_changelist"))
    assert "ru (set by an admin)" in listing.content.decode()
    admin_client.post(change_url(chat), {"site_user": "", "language": "", "is_blocked": ""})
    chat.refresh_from_db()
    assert (chat.language, chat.language_source) == ("", "")
    assert shown(bot_session) == "Hello, there! What would you like to do?"


@pytest.mark.usefixtures("bot_session")
def test_the_admin_refuses_a_language_the_site_does_not_offer(admin_client: Client) -> None:
    send(9202, "/start", "en")
    chat = TelegramChat.objects.get(chat_id=9202)
    response = admin_client.post(
        change_url(chat), {"site_user": "", "language": "fr", "is_blocked": ""}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "Select a valid choice" in response.content.decode()
    assert TelegramChat.objects.get(chat_id=9202).language == ""


async def test_the_monitor_shows_the_chats_language(
    inline_server: AsgiServer, thread_connections_closed: None
) -> None:
    cookie = await sync_to_async(session_cookie)("boss", staff=True)
    socket = await watch(inline_server, cookie, user=9203)
    try:
        chat = LocalTelegram(inline_server.url).chat(user_id=9203, language_code="de")
        await sync_to_async(chat.send)("/start")
        events = await receive_events(
            socket, has("dialog.started", language="de", language_source="Telegram app")
        )
    finally:
        await socket.close()
    assert all(event.get("language") == "de" for event in events if event["user_id"] == 9203)


def test_stored_chat_language_of_an_unknown_chat_is_none() -> None:
    assert stored_chat_language(1, 2, 3) is None


@pytest.mark.processes  # makemessages runs xgettext
def test_makemessages_finds_the_demos_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the demo's code, its catalog made afresh in a temporary directory."""
    shutil.copytree(ROOT / "project", tmp_path / "project", ignore=shutil.ignore_patterns("locale"))
    (tmp_path / "locale").mkdir()
    monkeypatch.chdir(tmp_path)
    with override_settings(LOCALE_PATHS=[str(tmp_path / "locale")]):
        call_command("makemessages", locale=["de"], verbosity=0, no_location=True)
    made = (tmp_path / "locale" / "de" / "LC_MESSAGES" / "django.po").read_text()
    assert 'msgid "Hello, {name}! What would you like to do?"' in made
    assert 'msgid "{count} x Pizza"\nmsgid_plural "{count} x Pizza"' in made
    assert 'msgid "Settings"' in made
    # Every text found is in the repository's catalogs, translated.
    found = {line for line in made.splitlines() if line.startswith("msgid ")} - {'msgid ""'}
    for po in catalogs():
        kept = po.read_text()
        missing = [msgid for msgid in found if msgid + "\n" not in kept]
        assert missing == [], f"{po} lacks {missing}"
        assert "#, fuzzy" not in kept.partition("\n\n")[2]


@pytest.mark.usefixtures("bot_session")
def test_setcommands_prints_each_languages_commands(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("setcommands", "default")
    out = capsys.readouterr().out
    assert "de: /start Hauptmenü, /settings Einstellungen: deine Sprache" in out
    assert "default: /start Main menu" in out


def test_local_telegram_keeps_commands_per_language(settings: Any) -> None:
    token = bots.bot_token("default")
    commands = [{"command": "start", "description": "Hauptmenü"}]
    assert botapi.call(token, "setMyCommands", {"commands": commands, "language_code": "de"})["ok"]
    assert botapi.call(token, "getMyCommands", {"language_code": "de"})["result"] == commands
    assert botapi.call(token, "getMyCommands", {"language_code": "ru"})["result"] == []
    bad = botapi.call(token, "setMyCommands", {"commands": "not json"})
    assert (bad["ok"], bad["error_code"]) == (False, 400)


def test_the_default_language_source_is_named() -> None:
    assert str(LanguageSource.DEFAULT) == "site default"
