"""Dialogs in the user's language (botdialogs.i18n) with the demo bot: handlers, background
actions from sync code, timers, node steps, a switch mid-dialog, plurals, bad codes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.methods import EditMessageText, SendMessage
from asgiref.sync import async_to_sync
from django.test import override_settings
from django.utils import translation

from botdialogs import background
from botdialogs.engine import bots
from botdialogs.i18n import (
    BadLanguage,
    LanguageSource,
    chat_language,
    set_chat_language,
    supported_language,
)
from botdialogs.models import LanguageChosenBy, TelegramChat
from botdialogs.testing import RecordingSession, callback_update, message_update
from botdialogs.timers import fire_due, schedule
from project.bot.texts import order_summary, quantity
from tests.support.i18n_catalogs import compiled_catalogs  # noqa: F401

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("compiled_catalogs")]


class CommandsSession(RecordingSession):
    """Also answers setMyCommands (the demo's menu of commands)."""

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        from aiogram.methods import DeleteMyCommands, SetMyCommands

        if isinstance(method, SetMyCommands | DeleteMyCommands):
            self.calls.append(method)
            return True
        return await super().make_request(bot, method, timeout)


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[RecordingSession]:
    recording = CommandsSession()
    monkeypatch.setattr(bots, "_new_bot", lambda s: Bot(bots.bot_token(s.name), session=recording))
    with override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "BACKGROUND": "inline"}):
        yield recording


def feed(update: dict[str, Any]) -> None:
    async def run() -> None:
        async with bots.bot_scope():
            bot = bots.get_bot("default")
            await bots.get_dispatcher("default").feed_raw_update(bot, update)

    async_to_sync(run)()


def speaking(update: dict[str, Any], language_code: str | None) -> dict[str, Any]:
    """``update`` from a user whose Telegram app is in ``language_code``."""
    for kind in ("message", "callback_query"):
        if kind in update:
            update[kind]["from"]["language_code"] = language_code
    return update


def send(chat_id: int, text: str, language_code: str | None = "de") -> None:
    feed(speaking(message_update(chat_id, text), language_code))


def press(
    session: RecordingSession, chat_id: int, label: str, language_code: str | None = "de"
) -> None:
    """Press the button labelled ``label`` on the bot's last keyboard."""
    markups = [c.reply_markup for c in session.calls if getattr(c, "reply_markup", None)]
    buttons = [b for row in markups[-1].inline_keyboard for b in row]
    data = next(b.callback_data for b in buttons if b.text == label)
    feed(speaking(callback_update(chat_id, data), language_code))


def shown(session: RecordingSession) -> str:
    return session.texts()[-1]


def labels(session: RecordingSession) -> list[str]:
    markup = next(
        c.reply_markup for c in reversed(session.calls) if getattr(c, "reply_markup", None)
    )
    return [button.text for row in markup.inline_keyboard for button in row]


def test_a_german_user_orders_food_in_german(session: RecordingSession) -> None:
    send(9101, "/start")
    assert shown(session) == "Hallo, Ann! Was möchtest du tun?"
    assert labels(session) == [
        "Essen bestellen",
        "Essen bestellen (Nodes)",
        "Zähler",
        "Meine Bestellungen",
    ]
    press(session, 9101, "Essen bestellen")
    assert shown(session) == "Hast du Hunger?"
    press(session, 9101, "Ja")
    assert shown(session) == "Leg etwas in deinen Warenkorb:\nDein Warenkorb ist leer."
    press(session, 9101, "+ Pizza")
    press(session, 9101, "+ Pizza")
    press(session, 9101, "+ Tee")
    assert shown(session) == "Leg etwas in deinen Warenkorb:\n2 x Pizzen\n1 x Tee"
    press(session, 9101, "Abschließen")
    assert shown(session).startswith("Bestellung Nr. ") and shown(session).endswith("Danke!")
    chat = TelegramChat.objects.get(chat_id=9101)
    assert (chat.language_code, chat.language) == ("de", "")  # Telegram's, not a choice


def test_the_same_order_in_english_keeps_its_words(session: RecordingSession) -> None:
    send(9102, "/start", "en")
    assert shown(session) == "Hello, Ann! What would you like to do?"
    press(session, 9102, "Order food", "en")
    press(session, 9102, "Yes", "en")
    press(session, 9102, "+ Pizza", "en")
    press(session, 9102, "+ Pizza", "en")
    assert shown(session) == "Add something to your cart:\n2 x Pizza"


def test_a_french_user_gets_the_default_language(session: RecordingSession) -> None:
    send(9103, "/start", "fr")  # not in settings.LANGUAGES: no catalog of the demo's
    assert shown(session) == "Hello, Ann! What would you like to do?"
    assert chat_language(TelegramChat.objects.get(chat_id=9103)).source == LanguageSource.DEFAULT


def test_a_regional_variant_finds_its_language(session: RecordingSession) -> None:
    send(9104, "/start", "de-AT")
    assert shown(session) == "Hallo, Ann! Was möchtest du tun?"


@pytest.mark.parametrize("code", ["xx-YY", "x" * 300, "de\x00", "../../etc", "", None])
def test_a_bad_language_code_is_the_default_and_stores(
    session: RecordingSession, code: str | None
) -> None:
    send(9105, "/start", code)
    assert shown(session) == "Hello, Ann! What would you like to do?"
    chat = TelegramChat.objects.get(chat_id=9105)
    assert len(chat.language_code) <= 16  # cut to the column, never a failed commit
    assert chat_language(chat).code == "en-us"


def test_supported_language_never_raises() -> None:
    assert supported_language("ru-RU") == "ru"
    assert supported_language("DE_de") == "de"
    for bad in ("xx-YY", "x" * 300, "-", "zz", 42, None, ""):
        assert supported_language(bad) is None


def test_a_switch_mid_dialog_redraws_and_is_kept(session: RecordingSession) -> None:
    send(9106, "/start", "en")
    press(session, 9106, "Order food", "en")
    assert shown(session) == "Are you hungry?"
    send(9106, "/settings", "en")
    assert shown(session) == "Settings\nLanguage: English"
    before = len(session.calls)
    press(session, 9106, "Deutsch", "en")
    edits = [c for c in session.calls[before:] if isinstance(c, EditMessageText)]
    assert len(edits) == 1  # the same window, redrawn
    edited = edits[0]
    assert edited.text == "Einstellungen\nSprache: Deutsch"
    assert [b.text for row in edited.reply_markup.inline_keyboard for b in row] == [
        "English",
        "✓ Deutsch",
        "Русский",
        "Schließen",
    ]
    chat = TelegramChat.objects.get(chat_id=9106)
    assert (chat.language, chat.language_source) == ("de", LanguageChosenBy.USER)
    press(session, 9106, "Schließen", "en")
    assert shown(session) == "Hast du Hunger?"  # the dialog below, now in German
    bots.reset()  # a restart: nothing kept in memory
    send(9106, "/start", "en")  # the Telegram app still says English: the choice wins
    assert shown(session) == "Hallo, Ann! Was möchtest du tun?"


def test_a_choice_in_the_first_update_is_stored(session: RecordingSession) -> None:
    send(9107, "/settings", "ru")  # no chat row yet: written with this update
    assert shown(session) == "Настройки\nЯзык: Русский"
    press(session, 9107, "English", "ru")
    assert shown(session) == "Settings\nLanguage: English"
    assert TelegramChat.objects.get(chat_id=9107).language == "en"


def test_a_background_action_from_an_english_view_renders_in_german(
    session: RecordingSession,
) -> None:
    send(9108, "/start")
    with translation.override("en"):  # a view of the site, in the admin's English
        background.start("default", 9108, 9108, "FoodOrder:hungry")
        assert translation.get_language() == "en"
    assert shown(session) == "Hast du Hunger?"


def test_a_timer_fires_in_the_users_language(session: RecordingSession) -> None:
    send(9109, "/start", "ru")
    press(session, 9109, "Заказать еду", "ru")
    schedule("default", 9109, 9109, "update", after=0, data={"reminded": True})

    async def fire() -> Any:
        async with bots.bot_scope():
            return await fire_due(wait=False)

    assert async_to_sync(fire)().claimed == 1
    assert shown(session) == "Всё ещё голодны?"


def test_node_steps_speak_the_users_language(session: RecordingSession) -> None:
    send(9110, "/start", "ru")
    press(session, 9110, "Заказать еду (узлы)", "ru")
    assert shown(session) == "Вы голодны?"
    press(session, 9110, "Да", "ru")
    assert shown(session) == "Добавьте что-нибудь в корзину:\nВаша корзина пуста."


def test_the_order_status_follows_the_users_language(session: RecordingSession) -> None:
    from project.shop.models import Order

    send(9111, "/start")
    order = Order.objects.create(telegram_user_id=9111, telegram_chat_id=9111, items={"Soup": 3})
    order.status = Order.Status.COOKING
    order.save()  # the shop's signal starts the order dialog from sync code
    assert shown(session) == f"Deine Bestellungen:\n#{order.pk}: 3 x Suppen - In der Küche"


@pytest.mark.parametrize(
    ("language", "counts"),
    [
        ("en", {1: "1 x Pizza", 2: "2 x Pizza", 5: "5 x Pizza"}),
        ("de", {1: "1 x Pizza", 2: "2 x Pizzen", 5: "5 x Pizzen"}),
        ("ru", {1: "1 пицца", 2: "2 пиццы", 5: "5 пицц", 21: "21 пицца", 12: "12 пицц"}),
    ],
)
def test_plural_forms(language: str, counts: dict[int, str]) -> None:
    with translation.override(language):
        for count, text in counts.items():
            assert quantity(count, "Pizza") == text


def test_an_unknown_dish_and_a_missing_translation_are_the_source_text() -> None:
    with translation.override("de"):
        assert quantity(2, "Borscht") == "2 x Borscht"
        assert order_summary({}) == "nichts"
    with translation.override("fr"):
        assert quantity(2, "Soup") == "2 x Soup"


def test_site_code_sets_a_chats_language(session: RecordingSession) -> None:
    send(9112, "/start", "en")
    chat = TelegramChat.objects.get(chat_id=9112)
    assert str(set_chat_language(chat, "ru-RU")) == "ru (set by the site)"
    with pytest.raises(BadLanguage):
        set_chat_language(chat, "xx-YY")
    chat.refresh_from_db()
    assert (chat.language, chat.language_source) == ("ru", LanguageChosenBy.SITE)
    background.update("default", 9112, 9112)  # a background event names no first name
    assert shown(session) == "Привет, друг! Что вы хотите сделать?"
    set_chat_language(chat, "")  # back to Telegram's
    assert chat_language(chat).source == LanguageSource.TELEGRAM


def user_language(pk: Any) -> str | None:
    """The SITE_USER_LANGUAGE hook of the tests: the site user's last name is a language."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=pk).values_list("last_name", flat=True).first()


def test_the_linked_site_users_language_comes_first(
    session: RecordingSession, settings: Any
) -> None:
    from django.contrib.auth import get_user_model

    from botdialogs.background.site_users import link_site_user

    hook = f"{__name__}.user_language"
    user = get_user_model().objects.create(username="hans", last_name="de")
    send(9113, "/start", "ru")
    link_site_user("default", 9113, user)
    with override_settings(BOTDIALOGS={**settings.BOTDIALOGS, "SITE_USER_LANGUAGE": hook}):
        bots.reset()
        send(9113, "/start", "ru")
        assert shown(session) == "Hallo, Ann! Was möchtest du tun?"
        chat = TelegramChat.objects.get(chat_id=9113)
        assert chat_language(chat).source == LanguageSource.SITE_USER
        user.last_name = "klingon"  # not a site language: the next in line
        user.save()
        send(9113, "/start", "ru")
        assert shown(session) == "Привет, Ann! Что вы хотите сделать?"


def test_set_language_rejects_a_language_the_site_does_not_offer(
    session: RecordingSession,
) -> None:
    send(9114, "/settings", "en")
    # Only offered languages are buttons; a forged press is refused before anything is stored.
    with pytest.raises(BadLanguage):
        from botdialogs.i18n.languages import checked_choice

        checked_choice("fr")
    assert TelegramChat.objects.get(chat_id=9114).language == ""


def test_commands_per_language(session: RecordingSession) -> None:
    from aiogram.methods import SetMyCommands

    from botdialogs.engine.bot_commands import set_commands

    async def run() -> Any:
        async with bots.bot_scope():
            return await set_commands("default")

    sent = async_to_sync(run)()
    calls = {c.language_code: c.commands for c in session.calls if isinstance(c, SetMyCommands)}
    assert set(calls) == {None, "en", "de", "ru"}
    assert [(c.command, c.description) for c in calls["de"]] == [
        ("start", "Hauptmenü"),
        ("settings", "Einstellungen: deine Sprache"),
    ]
    assert calls[None][0].description == "Main menu"
    assert sent["ru"][0].description == "Главное меню"
    assert not [c for c in session.calls if isinstance(c, SendMessage)]
