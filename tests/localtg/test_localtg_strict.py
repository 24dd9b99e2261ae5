"""Strict local Telegram: what bots commonly get wrong is refused as Telegram refuses it.

Every call goes over HTTP to the Bot API of local Telegram on a real ASGI server, and each
refusal is checked for Telegram's own code and description (bots and aiogram match on them).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from botdialogs.engine.bots import bot_token
from botdialogs.localtg import chats
from botdialogs.localtg.models import LocalCallbackQuery, LocalMessage
from botdialogs.testing import AsgiServer, LocalTelegram

pytestmark = pytest.mark.django_db(transaction=True)

BUTTON_DATA_INVALID = "Bad Request: BUTTON_DATA_INVALID"
TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
EDIT_NOT_FOUND = "Bad Request: message to edit not found"


def call(server: AsgiServer, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    """One Bot API call of the default bot as JSON over HTTP: (HTTP status, body)."""
    return LocalTelegram(server.url).call_bot_api(bot_token("default"), method, **params)


def refused(server: AsgiServer, method: str, **params: Any) -> tuple[int, str]:
    """The code and description of a call that must fail (its HTTP status is the code)."""
    status, body = call(server, method, **params)
    assert body["ok"] is False, body
    assert status == body["error_code"]
    return body["error_code"], body["description"]


def sent(server: AsgiServer, method: str = "sendMessage", **params: Any) -> dict[str, Any]:
    status, body = call(server, method, **params)
    assert (status, body["ok"]) == (200, True), body
    return body["result"]


def open_chat(server: AsgiServer, user_id: int) -> int:
    """A chat the bot may write to (the user exists and has not blocked it)."""
    return LocalTelegram(server.url).open_chat(user_id, first_name="Sam").user_id


def keyboard(data: str) -> dict[str, Any]:
    return {"inline_keyboard": [[{"text": "Go", "callback_data": data}]]}


def test_callback_data_is_at_most_64_bytes_of_utf8(inline_server: AsgiServer) -> None:
    chat_id = open_chat(inline_server, 8101)
    assert sent(inline_server, chat_id=chat_id, text="ok", reply_markup=keyboard("x" * 64))
    for data in ("x" * 65, "é" * 33, ""):  # 65 bytes; 66 bytes in 33 characters; empty
        assert refused(
            inline_server, "sendMessage", chat_id=chat_id, text="hi", reply_markup=keyboard(data)
        ) == (400, BUTTON_DATA_INVALID)
    message = sent(inline_server, chat_id=chat_id, text="to edit")
    assert refused(
        inline_server,
        "editMessageReplyMarkup",
        chat_id=chat_id,
        message_id=message["message_id"],
        reply_markup=keyboard("é" * 33),
    ) == (400, BUTTON_DATA_INVALID)
    # Nothing refused was stored: the chat holds the two messages that were accepted.
    assert LocalMessage.objects.filter(chat__chat_id=chat_id).count() == 2


def test_text_length_counts_utf16_code_units(inline_server: AsgiServer) -> None:
    chat_id = open_chat(inline_server, 8102)
    emoji = "\U0001f600"  # one code point, two UTF-16 code units
    assert sent(inline_server, chat_id=chat_id, text=emoji * 2048)["text"] == emoji * 2048
    assert refused(inline_server, "sendMessage", chat_id=chat_id, text=emoji * 2048 + "x") == (
        400,
        TOO_LONG,
    )
    # Markup does not count, the text it leaves does.
    assert sent(inline_server, chat_id=chat_id, text=f"<b>{'a' * 4096}</b>", parse_mode="HTML")
    message = sent(inline_server, chat_id=chat_id, text="short")
    assert refused(
        inline_server,
        "editMessageText",
        chat_id=chat_id,
        message_id=message["message_id"],
        text=emoji * 2049,
    ) == (400, TOO_LONG)


def test_caption_length_is_1024_utf16_code_units(inline_server: AsgiServer) -> None:
    chat_id = open_chat(inline_server, 8103)
    photo = {"chat_id": chat_id, "photo": "local-photo-known"}
    emoji = "\U0001f355"
    assert sent(inline_server, "sendPhoto", **photo, caption=emoji * 512)
    assert refused(inline_server, "sendPhoto", **photo, caption=emoji * 512 + "x") == (
        400,
        CAPTION_TOO_LONG,
    )
    assert refused(
        inline_server, "sendDocument", chat_id=chat_id, document="doc", caption="x" * 1025
    ) == (400, CAPTION_TOO_LONG)
    message = sent(inline_server, "sendPhoto", **photo, caption="pizza")
    assert refused(
        inline_server,
        "editMessageCaption",
        chat_id=chat_id,
        message_id=message["message_id"],
        caption="y" * 1025,
    ) == (400, CAPTION_TOO_LONG)


def test_an_edit_that_changes_nothing_is_not_modified(inline_server: AsgiServer) -> None:
    chat_id = open_chat(inline_server, 8104)
    message = sent(inline_server, chat_id=chat_id, text="<b>Menu</b>", parse_mode="HTML")
    where = {"chat_id": chat_id, "message_id": message["message_id"]}
    # The same text and formatting, written another way, is still no change.
    same = {"text": "Menu", "entities": [{"type": "bold", "offset": 0, "length": 4}]}
    assert refused(inline_server, "editMessageText", **where, **same) == (400, NOT_MODIFIED)
    assert refused(inline_server, "editMessageReplyMarkup", **where) == (400, NOT_MODIFIED)
    # A new keyboard is a change; the same keyboard again is not.
    assert sent(inline_server, "editMessageReplyMarkup", **where, reply_markup=keyboard("a"))
    assert refused(
        inline_server, "editMessageReplyMarkup", **where, reply_markup=keyboard("a")
    ) == (400, NOT_MODIFIED)
    assert LocalMessage.objects.get(chat__chat_id=chat_id).edit_count == 1


def test_a_callback_query_is_answered_once_and_only_while_fresh(
    inline_server: AsgiServer,
) -> None:
    chat_id = open_chat(inline_server, 8105)
    sent(inline_server, chat_id=chat_id, text="Pick", reply_markup=keyboard("pick"))
    press = chats.record_press("default", chat_id, data="pick")[0]["callback_query"]
    assert sent(inline_server, "answerCallbackQuery", callback_query_id=press["id"], text="ok")
    # Answered already, never sent, or sent too long ago: Telegram's one answer for all three.
    assert refused(inline_server, "answerCallbackQuery", callback_query_id=press["id"]) == (
        400,
        QUERY_INVALID,
    )
    assert refused(inline_server, "answerCallbackQuery", callback_query_id="no-such-id") == (
        400,
        QUERY_INVALID,
    )
    late = chats.record_press("default", chat_id, data="pick")[0]["callback_query"]
    LocalCallbackQuery.objects.filter(query_id=late["id"]).update(
        created_at=timezone.now() - timedelta(minutes=1)
    )
    assert refused(inline_server, "answerCallbackQuery", callback_query_id=late["id"]) == (
        400,
        QUERY_INVALID,
    )
    assert LocalCallbackQuery.objects.filter(answered=True).count() == 1


def test_a_message_of_another_chat_cannot_be_edited(inline_server: AsgiServer) -> None:
    mine, other = open_chat(inline_server, 8106), open_chat(inline_server, 8107)
    for _ in range(3):
        theirs = sent(inline_server, chat_id=other, text="theirs")
    # Message ids count per chat: the other chat's third message is not in this one.
    assert refused(
        inline_server, "editMessageText", chat_id=mine, message_id=theirs["message_id"], text="x"
    ) == (400, EDIT_NOT_FOUND)
    assert refused(
        inline_server,
        "editMessageReplyMarkup",
        chat_id=mine,
        message_id=theirs["message_id"],
        reply_markup=keyboard("a"),
    ) == (400, EDIT_NOT_FOUND)
    assert not LocalMessage.objects.filter(chat__chat_id=other, edit_count__gt=0).exists()


@pytest.mark.parametrize(
    "entity",
    [
        {"type": "bold", "offset": 0, "length": 6},  # one past the end of "hello"
        {"type": "bold", "offset": 5, "length": 1},
        {"type": "italic", "offset": -1, "length": 2},
        {"type": "bold", "offset": 0, "length": 0},
    ],
)
def test_entities_out_of_range_cannot_be_parsed(
    inline_server: AsgiServer, entity: dict[str, Any]
) -> None:
    chat_id = open_chat(inline_server, 8108)
    code, description = refused(
        inline_server, "sendMessage", chat_id=chat_id, text="hello", entities=[entity]
    )
    assert code == 400
    assert description.startswith("Bad Request: can't parse entities:")
    # In UTF-16 units: the emoji is two, so an entity over both of them is in range.
    assert sent(
        inline_server,
        chat_id=chat_id,
        text="\U0001f600!",
        entities=[{"type": "bold", "offset": 0, "length": 3}],
    )["entities"] == [{"type": "bold", "offset": 0, "length": 3}]
