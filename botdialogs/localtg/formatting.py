"""Telegram's formatting for local Telegram: ``parse_mode="HTML"`` and ``entities``.

Telegram stores a message as plain text plus *entities* (bold from offset 3 for 5 UTF-16
code units, a link with its URL, ...): it never keeps the markup. Local Telegram does the
same, so bots read back what Telegram would return and the chat page draws the entities with
DOM calls, never as HTML. Only Telegram's own tags are accepted, like Telegram does; links
must be ``http(s)://`` or ``tg://``. Markdown parse modes are not emulated: their text is
kept as written.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from botdialogs.exceptions import BotDialogsError

#: HTML tags Telegram understands, and the entity type each one makes.
TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
LINK_SCHEMES = ("http://", "https://", "tg://")
#: The keys of a MessageEntity that local Telegram keeps.
ENTITY_KEYS = ("type", "offset", "length", "url", "language", "custom_emoji_id")


class FormattingError(BotDialogsError, ValueError):
    """Markup or entities Telegram would refuse ("can't parse entities")."""


def utf16_length(text: str) -> int:
    """The length of ``text`` as Telegram counts entity offsets: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


class _TelegramHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.length = 0
        self.open: list[tuple[str, dict[str, Any] | None]] = []
        self.entities: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        kind = TAGS.get(tag)
        if kind is None or (tag == "span" and values.get("class") != "tg-spoiler"):
            raise FormattingError(f'Unsupported start tag "{tag}"')
        entity: dict[str, Any] | None = {"type": kind, "offset": self.length}
        if tag == "a":
            url = values.get("href", "")
            if not url.lower().startswith(LINK_SCHEMES):
                raise FormattingError(f"Wrong HTTP URL {url!r}")
            entity = {**(entity or {}), "url": url}
        if tag == "code" and self.open and self.open[-1][0] == "pre":
            # <pre><code class="language-x">: one pre entity with its language.
            language = values.get("class", "").removeprefix("language-")
            pre = self.open[-1][1]
            if pre is not None and language and language != values.get("class", ""):
                pre["language"] = language
                entity = None
        self.open.append((tag, entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise FormattingError(f'Unsupported start tag "{tag}"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1][0] != tag:
            raise FormattingError(f'Unmatched end tag "{tag}"')
        _, entity = self.open.pop()
        if entity is not None and self.length > entity["offset"]:
            entity["length"] = self.length - entity["offset"]
            self.entities.append(entity)

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        self.length += utf16_length(data)


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram HTML to (plain text, entities sorted as Telegram sorts them)."""
    parser = _TelegramHtml()
    parser.feed(markup)
    parser.close()
    if parser.open:
        tag = parser.open[-1][0]
        raise FormattingError(f'Can\'t find end tag corresponding to start tag "{tag}"')
    entities = sorted(parser.entities, key=lambda e: (e["offset"], -e["length"]))
    return "".join(parser.parts), entities


def clean_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Entities a bot gave as such, checked against ``text`` and stripped to known keys."""
    if not isinstance(entities, list):
        raise FormattingError("entities must be an array")
    length = utf16_length(text)
    cleaned = []
    for entity in entities:
        if not isinstance(entity, dict) or not isinstance(entity.get("type"), str):
            raise FormattingError("an entity must be an object with a type")
        offset, size = entity.get("offset"), entity.get("length")
        if not isinstance(offset, int) or not isinstance(size, int):
            raise FormattingError("an entity needs an integer offset and length")
        if offset < 0 or size <= 0 or offset + size > length:
            raise FormattingError("an entity lies outside the text")
        if entity["type"] == "text_link" and not str(entity.get("url", "")).lower().startswith(
            LINK_SCHEMES
        ):
            raise FormattingError(f"Wrong HTTP URL {entity.get('url')!r}")
        cleaned.append({key: entity[key] for key in ENTITY_KEYS if key in entity})
    return cleaned


def formatted(text: str, parse_mode: Any, entities: Any) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and entities of a text (or caption) as a bot sent it."""
    if entities is not None:
        return text, clean_entities(text, entities)
    if str(parse_mode or "").lower() == "html":
        return parse_html(text)
    return text, []
