"""Local Telegram keeps formatting as Telegram does: plain text plus entities."""

from __future__ import annotations

import pytest

from botdialogs.engine.bots import bot_token
from botdialogs.localtg import botapi, chats
from botdialogs.localtg.formatting import FormattingError, parse_html

pytestmark = pytest.mark.django_db(transaction=True)


def test_html_becomes_text_and_entities() -> None:
    text, entities = parse_html(
        '<b>Menu</b> for <i>you &amp; <u>me</u></i>: <a href="https://example.com/">site</a>'
    )
    assert text == "Menu for you & me: site"
    assert entities == [
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "italic", "offset": 9, "length": 8},
        {"type": "underline", "offset": 15, "length": 2},
        {"type": "text_link", "offset": 19, "length": 4, "url": "https://example.com/"},
    ]


def test_offsets_count_utf16_code_units_like_telegram() -> None:
    text, entities = parse_html("🍕 <b>pizza</b>")
    assert text == "🍕 pizza"
    assert entities == [{"type": "bold", "offset": 3, "length": 5}]


def test_pre_with_a_language_is_one_entity() -> None:
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert (text, entities) == (
        "x = 1",
        [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
    )


@pytest.mark.parametrize(
    ("markup", "message"),
    [
        ("<script>alert(1)</script>", 'Unsupported start tag "script"'),
        ('<img src=x onerror="alert(1)">', 'Unsupported start tag "img"'),
        ('<a href="javascript:alert(1)">x</a>', "Wrong HTTP URL"),
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'Unmatched end tag "i"'),
        ("<br/>", 'Unsupported start tag "br"'),
    ],
)
def test_markup_telegram_refuses_is_refused(markup: str, message: str) -> None:
    with pytest.raises(FormattingError, match=message):
        parse_html(markup)


def send(params: dict[str, object]) -> dict[str, object]:
    chats.open_chat("default", 7101, {"first_name": "Hal"})
    return botapi.call(bot_token("default"), "sendMessage", {"chat_id": 7101, **params})


def test_the_bot_api_returns_what_telegram_would() -> None:
    answer = send({"text": "<b>Hi</b> <script>", "parse_mode": "HTML"})
    assert answer["ok"] is False and answer["error_code"] == 400
    assert answer["description"].startswith("Bad Request: can't parse entities: Unsupported")

    sent = send({"text": "<b>Hi</b> &lt;script&gt;", "parse_mode": "HTML"})["result"]
    assert (sent["text"], sent["entities"]) == (
        "Hi <script>",
        [{"type": "bold", "offset": 0, "length": 2}],
    )
    # Without a parse mode the markup is the text itself.
    plain = send({"text": "<b>Hi</b>"})["result"]
    assert plain["text"] == "<b>Hi</b>" and "entities" not in plain
    shown = chats.read_chat("default", 7101)["messages"]
    assert [(m["text"], m["entities"]) for m in shown] == [
        ("Hi <script>", [{"type": "bold", "offset": 0, "length": 2}]),
        ("<b>Hi</b>", []),
    ]


def test_entities_given_as_such_are_checked() -> None:
    ok = send({"text": "Hello", "entities": '[{"type": "italic", "offset": 0, "length": 5}]'})
    assert ok["result"]["entities"] == [{"type": "italic", "offset": 0, "length": 5}]
    outside = send({"text": "Hi", "entities": [{"type": "bold", "offset": 1, "length": 5}]})
    assert outside["ok"] is False
    bad_link = send(
        {
            "text": "Hi",
            "entities": [{"type": "text_link", "offset": 0, "length": 2, "url": "javascript:x"}],
        }
    )
    assert bad_link["ok"] is False
