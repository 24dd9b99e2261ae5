"""botdialogs' own words in the user's language: its catalogs (botdialogs/locale) through the
real webhook of a server process, and the catalogs in the wheel's package data."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

import pytest
from django.utils import translation

import botdialogs
from botdialogs.models import DialogContext
from botdialogs.testing import LocalTelegram

pytestmark = pytest.mark.django_db(transaction=True)
LOCALE = Path(botdialogs.__file__).parent / "locale"
STALE_BUTTON = {
    "de": "Diese Schaltfläche ist nicht mehr aktiv.",
    "ru": "Эта кнопка больше не активна.",
    "en": "This button is no longer active.",
}


@pytest.mark.parametrize("language_code", ["de", "ru", "en"])
def test_an_old_button_is_answered_in_the_users_language(
    local_telegram: LocalTelegram, language_code: str
) -> None:
    user_id = {"de": 9501, "ru": 9502, "en": 9503}[language_code]
    chat = local_telegram.chat(user_id=user_id, first_name="Hans", language_code=language_code)
    chat.send("/start")
    menu = chat.wait_for(lambda m: m.from_bot and bool(m.buttons))
    # The dialog is gone (closed elsewhere, or its rows expired): its buttons are stale.
    DialogContext.objects.filter(chat_id=user_id).delete()
    chat.press(menu.buttons[0][0])
    answers = chat.read()["callback_answers"]
    assert [a["text"] for a in answers][-1:] == [STALE_BUTTON[language_code]]


@pytest.mark.parametrize("language", ["de", "ru"])
def test_the_library_ships_compiled_catalogs(language: str) -> None:
    """The .mo files are committed (the wheel carries them; docs/tutorial/check.py checks the
    wheel): each must hold every translation of its .po."""
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    with (po.with_suffix(".mo")).open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog  # type: ignore[attr-defined]
    entries = dict(re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$', po.read_text(), re.MULTILINE))
    assert entries and {k: compiled.get(k) for k in entries} == entries
    with translation.override(language):
        assert translation.gettext("This button is no longer active.") == STALE_BUTTON[language]
